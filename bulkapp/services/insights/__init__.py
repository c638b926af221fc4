"""Insights: the dashboard's figures, hourly roll-ups, platform statistics and chart geometry.

Modules:
- ``charts``
- ``dashboard``
- ``hourly_stats``
- ``platform``
"""
