from django.http import JsonResponse

from core.health import health_report


def healthz(request):
    """200 while this instance can serve (``ok`` or ``degraded``: a job queue
    that is behind is not fixed by taking web instances out); 503 on ``error``."""
    report = health_report()
    return JsonResponse(report, status=503 if report["status"] == "error" else 200)
