import stream_sync
from django.http import JsonResponse, StreamingHttpResponse
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


def stepped(request):
    """StreamingHttpResponse: chunk N only after the test read chunk N-1 (tests/apps/stream_sync.py)."""
    directory, n = request.GET["dir"], int(request.GET.get("n", "4"))

    def generate():
        for i in range(n):
            if not stream_sync.wait_go(directory, i):
                yield "gave up waiting for go-%d\n" % i
                return
            yield "chunk %d\n" % i

    return StreamingHttpResponse(generate(), content_type="text/plain")


urlpatterns = [path("hello/", hello), path("stepped/", stepped)]
