"""The coordinator of a federated training run, in a process of its own: ``python -m
fairimage.services.federation.coordinator`` reads its plan as JSON on stdin (the address to listen on,
the rounds, how many nodes take part, the run's session token, the first weights), runs a Flower server
with FedAvg over exactly those nodes, and writes one JSON line per round on stdout, then the final
weights. Only results that carry the session token count; a node that fails, or too few that answer,
end the run with one line on stderr and exit code 1. Its parent (services/federation/learning) starts
the nodes' parts and stops this process if one of them fails."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

import flwr
import numpy as np
from flwr.common import FitRes, Parameters, Scalar, ndarrays_to_parameters, parameters_to_ndarrays
from flwr.server.client_proxy import ClientProxy
from flwr.server.strategy import FedAvg


class Strategy(FedAvg):  # type: ignore[misc]
    """FedAvg over the run's nodes only, keeping the weights of each round."""

    def __init__(self, nodes: int, session: str, weights: list[float]) -> None:
        super().__init__(
            fraction_fit=1.0,
            fraction_evaluate=1.0,
            min_fit_clients=nodes,
            min_evaluate_clients=nodes,
            min_available_clients=nodes,
            accept_failures=False,
            initial_parameters=ndarrays_to_parameters([np.asarray(weights, dtype=np.float64)]),
            on_fit_config_fn=lambda round_: {"session": session, "round": round_},
            on_evaluate_config_fn=lambda round_: {"session": session, "round": round_},
        )
        self.nodes, self.session = nodes, session
        self.weights: list[float] = list(weights)

    def aggregate_fit(
        self,
        server_round: int,
        results: list[tuple[ClientProxy, FitRes]],
        failures: list[Any],
    ) -> tuple[Parameters | None, dict[str, Scalar]]:
        known = [(proxy, res) for proxy, res in results if res.metrics.get("session") == self.session]
        if failures or len(known) < self.nodes:
            raise RuntimeError(
                f"round {server_round}: {len(known)} of {self.nodes} nodes answered with the run's token "
                f"({len(failures)} failed); the run stops"
            )
        aggregated, metrics = super().aggregate_fit(server_round, known, [])
        if aggregated is not None:
            self.weights = parameters_to_ndarrays(aggregated)[0].tolist()
        pixels = sum(res.num_examples for _, res in known)
        print(json.dumps({"round": server_round, "nodes": len(known), "pixels": pixels}), flush=True)
        return aggregated, metrics

    def aggregate_evaluate(
        self, server_round: int, results: list[tuple[ClientProxy, Any]], failures: list[Any]
    ) -> tuple[float | None, dict[str, Scalar]]:
        scored = [(proxy, res) for proxy, res in results if res.num_examples > 0]
        if not scored:  # no node has enough held-out images to say
            return None, {}
        return super().aggregate_evaluate(server_round, scored, failures)  # type: ignore[no-any-return]


def main() -> int:
    plan = json.loads(sys.stdin.read())
    logging.getLogger("flwr").setLevel(logging.WARNING)
    strategy = Strategy(int(plan["nodes"]), str(plan["session"]), [float(w) for w in plan["weights"]])
    try:
        history = flwr.server.start_server(
            server_address=str(plan["listen"]),
            config=flwr.server.ServerConfig(
                num_rounds=int(plan["rounds"]), round_timeout=float(plan["round_seconds"])
            ),
            strategy=strategy,
        )
    except Exception as exc:  # noqa: BLE001 - one line to the parent, which reports it
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    losses = [[round_, loss] for round_, loss in history.losses_distributed]
    print(json.dumps({"weights": strategy.weights, "losses": losses}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
