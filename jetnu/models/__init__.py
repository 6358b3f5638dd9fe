"""Model zoo, local weight loading and the Lightning tagger module."""

from jetnu.models.zoo import MODEL_ZOO, create_model, list_models

__all__ = ["MODEL_ZOO", "create_model", "list_models"]
