"""PV and load forecasts from the site's history and the weather, their error spread and accuracy."""
