"""Pages for collectors, served by the gateway itself: server-rendered HTML over the same data as the API.

`/ui` (search), `/ui/cards/{id}` (chart, fair band, signals, a quote for any
date), `/ui/watchlists` (the key's watchlists and recent alerts), `/ui/model`
(served versions, recent versions with their evaluation). Jinja2 templates
escape everything that comes from data; the only scripts are this package's
`static/card.js` and TradingView's Lightweight Charts, served from the
installed `lightweight-charts` wheel (nothing is fetched from elsewhere), under
a Content-Security-Policy that allows the gateway's own scripts only.
"""
