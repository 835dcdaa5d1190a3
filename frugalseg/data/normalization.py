"""Input normalisation every zoo student expects: RGB in [0, 1], minus the ImageNet mean, over its std."""

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
