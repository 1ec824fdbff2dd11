"""diffkit's Hydra config tree (an importable package so `config_path="conf"` resolves for console scripts)."""
