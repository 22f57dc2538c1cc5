"""Each service's settings as a typed model (pydantic-settings), read from its environment
variables; the one table of default ports (`ports`)."""

from tagllm.settings.base import ServiceSettings, SettingsError, load_settings
from tagllm.settings.common import GrpcSettings
from tagllm.settings.gateway import GatewaySettings
from tagllm.settings.metrics import MetricsSettings
from tagllm.settings.refiner import RefinerSettings

# Each service process by name: its settings and its module (`python -m MODULE`).
SERVICES: dict[str, tuple[type[GrpcSettings], str]] = {
    "gateway": (GatewaySettings, "services.gateway.server"),
    "refiner": (RefinerSettings, "services.refiner.server"),
    "metrics": (MetricsSettings, "services.metrics.server"),
}

__all__ = [
    "SERVICES",
    "GatewaySettings",
    "GrpcSettings",
    "MetricsSettings",
    "RefinerSettings",
    "ServiceSettings",
    "SettingsError",
    "load_settings",
]
