from django.http import JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt


@csrf_exempt
def hello(request):
    return JsonResponse({
        "method": request.method,
        "path": request.path,
        "q": request.GET.get("q"),
        "body": request.body.decode(),
        "host": request.get_host(),
    })


urlpatterns = [path("hello/", hello)]
