"""Sample transforms: random crops, spherical projection of point clouds, point augmentation and
range-image samples, and the low-resolution pairs of joint upsampling."""
