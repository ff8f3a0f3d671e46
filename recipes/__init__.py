"""Recipes: concept vocabulary, sample x concept matching, diversity and yes/no balance, named recipes.

``build_recipe`` is what ``svit-recipe build`` calls for configs of kind "recipe"; ``RECIPES`` holds
each recipe's parameters. See ``selection.py`` for the exact objectives.
"""

from svit_data.recipes.build import build_recipe, select_recipe
from svit_data.recipes.registry import RECIPES, RecipeSpec, get_recipe

__all__ = ["RECIPES", "RecipeSpec", "build_recipe", "get_recipe", "select_recipe"]
