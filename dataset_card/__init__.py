"""The dataset card's templates, as package data (`importlib.resources.files("dataset_card")`)."""
