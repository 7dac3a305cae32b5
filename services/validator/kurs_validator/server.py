"""Assemble the validator: channel to rates -> servicer -> gRPC server."""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from kurs.rates.v1 import ingest_pb2_grpc
from kurs.validator.v1 import validator_pb2, validator_pb2_grpc
from kurs_common.grpcserver import RunningServer, insecure_channel, start_server
from kurs_validator.servicer import ValidatorServicer
from kurs_validator.settings import ValidatorSettings


@dataclass
class ValidatorService:
    channel: grpc.aio.Channel
    grpc: RunningServer

    @property
    def port(self) -> int:
        return self.grpc.port

    async def stop(self, grace: float = 5.0) -> None:
        await self.grpc.stop(grace)
        await self.channel.close()


async def start(settings: ValidatorSettings) -> ValidatorService:
    channel = insecure_channel(settings.rates_address)
    servicer = ValidatorServicer(
        ingest_pb2_grpc.RatesIngestServiceStub(channel),
        settings.forward_batch,
        settings.forward_timeout_seconds,
    )

    def register(server: grpc.aio.Server) -> list[str]:
        validator_pb2_grpc.add_ValidatorServiceServicer_to_server(servicer, server)
        return [validator_pb2.DESCRIPTOR.services_by_name["ValidatorService"].full_name]

    return ValidatorService(channel, await start_server(settings.address, register))
