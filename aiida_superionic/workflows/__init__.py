"""Work chains: descriptors of MD runs (and, with the engines, the material workflow)."""
