"""Front ends of the running site: Home Assistant over MQTT and the web API (see controller.status.state)."""
