"""Home Assistant over MQTT: discovery, state out, commands in."""
