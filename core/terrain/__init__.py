"""Terrain: topographic position index, landform classes, slope."""
