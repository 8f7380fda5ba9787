"""Energy and money of the site's days and months, from the stored history."""
