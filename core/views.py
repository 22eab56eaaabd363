from django.http import JsonResponse

from core.health import health_report


def healthz(request):
    report = health_report()
    return JsonResponse(report, status=200 if report["status"] == "ok" else 503)
