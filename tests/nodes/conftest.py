"""Import the pack once, as ComfyUI does, before any test can put stand-ins of ComfyUI's modules in
sys.modules (the pack installs its ComfyUI hooks at import time only when ComfyUI is there)."""

from comfy_calls import load_pack

load_pack()
