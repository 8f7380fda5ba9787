"""Flexible loads: appliances, water heaters and heat pumps planned with the battery and switched by the control loop."""
