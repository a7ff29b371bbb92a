"""The one place that talks HTTP to vendors: sends a VendorRequest, returns a VendorReply.

Transport failures become :class:`~liveness_gateway.errors.GatewayError` here; what the
reply *says* is interpreted by the vendor modules.
"""

from __future__ import annotations

import logging

import aiohttp

from liveness_gateway import errors
from liveness_gateway.vendors.base import VendorReply, VendorRequest

log = logging.getLogger(__name__)

_CONNECT_TIMEOUT_S = 3.0
_USER_AGENT = "liveness-gateway"


def new_session(*, pool_size: int = 100) -> aiohttp.ClientSession:
    """The process' one vendor session: pooled keep-alive connections, no cookies."""
    connector = aiohttp.TCPConnector(limit=pool_size, enable_cleanup_closed=True)
    return aiohttp.ClientSession(
        connector=connector,
        cookie_jar=aiohttp.DummyCookieJar(),
        headers={"User-Agent": _USER_AGENT},
        raise_for_status=False,
        auto_decompress=True,
    )


def build_form(request: VendorRequest) -> aiohttp.FormData:
    form = aiohttp.FormData(default_to_multipart=True)
    for part in request.parts:
        if part.filename is not None:
            form.add_field(
                part.name,
                part.value,
                filename=part.filename,
                content_type="application/octet-stream",
            )
        else:
            form.add_field(part.name, part.value)
    return form


class VendorTransport:
    """Sends vendor requests over a shared session, with a cap on what is read back."""

    def __init__(self, session: aiohttp.ClientSession, *, max_reply_bytes: int) -> None:
        self._session = session
        self._max_reply_bytes = max_reply_bytes

    async def send(
        self, request: VendorRequest, *, timeout_s: float, caller_bound: bool
    ) -> VendorReply:
        """POST the request; ``caller_bound`` says the timeout is the caller's deadline."""
        timeout = aiohttp.ClientTimeout(
            total=timeout_s, sock_connect=min(_CONNECT_TIMEOUT_S, timeout_s)
        )
        try:
            async with self._session.post(
                request.url,
                data=build_form(request),
                headers=dict(request.headers),
                timeout=timeout,
                allow_redirects=False,
            ) as resp:
                body = await self._read_capped(request, resp)
                return VendorReply(
                    vendor=request.vendor,
                    http_status=resp.status,
                    body=body,
                    retry_after=resp.headers.get("Retry-After"),
                )
        except TimeoutError:
            if caller_bound:
                raise errors.deadline_exceeded(request.vendor) from None
            raise errors.vendor_timeout(request.vendor) from None
        except aiohttp.ClientConnectorError as exc:
            # The TCP (or TLS) connection was never made: nothing was sent.
            log.info("vendor %s connect failed: %s", request.vendor, type(exc).__name__)
            raise errors.unreachable(request.vendor, never_sent=True) from None
        except aiohttp.ClientPayloadError:
            raise errors.bad_reply(request.vendor, "the reply body was cut short") from None
        except (aiohttp.ClientError, OSError) as exc:
            log.info("vendor %s unreachable: %s", request.vendor, type(exc).__name__)
            raise errors.unreachable(request.vendor) from None

    async def _read_capped(self, request: VendorRequest, resp: aiohttp.ClientResponse) -> bytes:
        cap = self._max_reply_bytes
        if resp.content_length is not None and resp.content_length > cap:
            resp.close()
            raise errors.bad_reply(
                request.vendor, f"the reply is larger than {cap} bytes", http_status=resp.status
            )
        chunks: list[bytes] = []
        total = 0
        async for chunk in resp.content.iter_any():
            total += len(chunk)
            if total > cap:
                resp.close()
                raise errors.bad_reply(
                    request.vendor, f"the reply is larger than {cap} bytes", http_status=resp.status
                )
            chunks.append(chunk)
        return b"".join(chunks)


__all__ = ["VendorTransport", "build_form", "new_session"]
