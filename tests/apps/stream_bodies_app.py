"""`wsgi_app.raw` for an application that asks the gthread worker to stream request
bodies (read as they arrive, the application called at once) instead of spooling them
before it is called: the `ferrocorn_stream_request_body` attribute."""

from wsgi_app import raw


def app(environ, start_response):
    return raw(environ, start_response)


app.ferrocorn_stream_request_body = True
