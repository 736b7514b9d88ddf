"""The LUMA class list: the one place that names the 50 classes and their ids."""

CLASS_NAMES = (
    "man", "boy", "house", "woman", "girl", "table", "road", "horse", "dog", "ship",
    "bird", "mountain", "bed", "train", "bridge", "fish", "cloud", "chair", "cat", "baby",
    "castle", "forest", "television", "bear", "camel", "sea", "fox", "plain", "bus", "snake",
    "lamp", "clock", "lion", "tank", "palm", "rabbit", "pine", "cattle", "oak", "mouse",
    "frog", "ray",
    # out-of-distribution classes
    "bicycle", "truck", "elephant", "roses", "wolf", "telephone", "bee", "whale",
)  # fmt: skip
NUM_ID_CLASSES = 42
ID_CLASSES = range(NUM_ID_CLASSES)
OOD_CLASSES = range(NUM_ID_CLASSES, len(CLASS_NAMES))
CLASS_ID = {name: i for i, name in enumerate(CLASS_NAMES)}

# CIFAR names that LUMA spells differently; every other LUMA word is a CIFAR name as it is.
CIFAR_RENAMES = {
    "aquarium_fish": "fish",
    "pickup_truck": "truck",
    "oak_tree": "oak",
    "rose": "roses",
    "pine_tree": "pine",
    "palm_tree": "palm",
}


def luma_word(cifar_name: str) -> str:
    return CIFAR_RENAMES.get(cifar_name, cifar_name)
