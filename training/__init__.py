"""Training package for ComfyUI-RnR (re-creates the models the nodes load)."""
