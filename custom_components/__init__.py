"""Kefu's Rasa plugins: NLU components, the routing policy and channel connectors (Rasa server side only).

Importing this package installs our fixes for Rasa's hot paths (`rasa_speedups`): every Rasa
process that loads our model imports it first.
"""

from custom_components import rasa_speedups

rasa_speedups.install()
