"""Running the services as local processes: Triton, refiner, gateway, metrics, Prometheus."""
