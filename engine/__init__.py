"""PyramidalWan engine: pyramidal sampling for diffusers Wan2.1 components (no UI, no training code)."""
