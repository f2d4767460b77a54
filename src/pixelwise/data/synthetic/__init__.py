"""Generators of the embedded default data: synthetic scenes for upsampling, instances and
segmentation, simulated LiDAR scans, and the photo textures they are painted with."""
