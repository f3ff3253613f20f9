"""The event stream over TCP: a client that streams a run's events (:mod:`.client`), the
log consumer that receives them from any number of runs (:mod:`.server`), its Prometheus
exporter (:mod:`.metrics`), and the one parser of their ``HOST:PORT`` options
(:mod:`.address`).

Nothing is re-exported here: import from the modules, so that a run streaming its events
never imports the consumer, nor the consumer ``prometheus_client`` unless asked to.
"""
