"""`nasforge dashboard DIR`: a live web page over a search's trial store (read-only).

reader.py follows the store read-only while the search writes; views.py computes what
the page shows; files.py decides which files of DIR may be served and generates a
trial's model file; access.py keeps the page on the loopback address (or behind a
token); app.py is the Starlette application; serve.py runs it with uvicorn. The page's
script and Chart.js ship in static/ (no network needed); templates/ holds its HTML.
"""
