"""Historical analysis of the reference series: fluctuation, volatility, trend, OHLC and forecast.

`series` pages the rates service's `GetTimeSeries` (366 days per call) into one series per
currency; `stats` and `forecast` are pure functions over such series. Which figures are exact
decimals and which are float64 is documented per function and in docs/analysis.md.
"""
