"""The GoodWe ET emulator: a pymodbus server, its register map and the simulated site behind it."""
