"""TLS: the contexts services, clients, registries and brokers use, and callers' certificates.

Everything here is the standard library's :mod:`ssl`; nothing is hand-made. The settings
are named as uvicorn names them (``ssl_certfile``, ``ssl_keyfile``, ``ssl_keyfile_password``,
``ssl_ca_certs``, ``ssl_cert_reqs``): see ``docs/deployment.md`` (TLS).

- :func:`server_context` builds a service's context: its certificate and key, and (for
  mutual TLS) the CA bundle client certificates are verified against. Only that bundle
  is trusted for client certificates, never the system store. TLS 1.2 at least.
- :func:`client_context` builds a caller's context: servers are verified against the
  system store (``SSL_CERT_FILE`` is honoured) or a given CA bundle, host names are
  checked, and a client certificate may be presented. Verification is off only when
  asked (``verify=False``), and a warning says so once per process.
- :func:`check_private_key` refuses a private key file other users can read or change.
- :func:`peer_certificate` returns the verified certificate of the caller of a request
  as a :class:`CertificateIdentity` (``None`` without one).

Every problem with a file is a :class:`~gemstone_aio.errors.ServiceConfigurationError`
whose one-line message names the setting and the file.
"""

from __future__ import annotations

import collections
import logging
import os
import ssl
import stat
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from .errors import ServiceConfigurationError

__all__ = [
    "CertificateIdentity",
    "as_cert_reqs",
    "check_client_files",
    "check_private_key",
    "client_context",
    "effective_cert_reqs",
    "peer_certificate",
    "redis_tls_options",
    "reload_server_context",
    "server_context",
]

_log = logging.getLogger("gemstone_aio.tls")

_CERT_REQS: Final = {
    "none": ssl.CERT_NONE,
    "cert_none": ssl.CERT_NONE,
    "0": ssl.CERT_NONE,
    "optional": ssl.CERT_OPTIONAL,
    "cert_optional": ssl.CERT_OPTIONAL,
    "1": ssl.CERT_OPTIONAL,
    "required": ssl.CERT_REQUIRED,
    "cert_required": ssl.CERT_REQUIRED,
    "2": ssl.CERT_REQUIRED,
}
_REQS_NAMES: Final = {
    ssl.CERT_NONE: "none",
    ssl.CERT_OPTIONAL: "optional",
    ssl.CERT_REQUIRED: "required",
}
_CERTIFICATE: Final = "-----BEGIN CERTIFICATE-----"
_PRIVATE_KEY: Final = "PRIVATE KEY-----"
_MAX_PEM: Final = 1024 * 1024  # a PEM file larger than this is no certificate or key


def as_cert_reqs(raw: Any) -> ssl.VerifyMode:
    """Convert ``raw`` to an :class:`ssl.VerifyMode` (the template of ``ssl_cert_reqs``).

    Accepts ``none``, ``optional`` and ``required`` in any letter case, uvicorn's
    ``0``, ``1`` and ``2`` (numbers or strings), the :mod:`ssl` constants and their names
    (``CERT_REQUIRED``).
    """
    if isinstance(raw, ssl.VerifyMode):
        return raw
    if isinstance(raw, bool):
        raise TypeError(
            "a boolean is not a certificate requirement (use none, optional or required)"
        )
    key = str(raw).strip().lower()
    if key in _CERT_REQS:
        return _CERT_REQS[key]
    raise ValueError("use none, optional or required (or uvicorn's 0, 1, 2)")


def effective_cert_reqs(cert_reqs: Any, ca_certs: str | os.PathLike[str] | None) -> ssl.VerifyMode:
    """What ``ssl_cert_reqs`` means: unset, ``required`` with a CA bundle, else ``none``."""
    if cert_reqs is None:
        return ssl.CERT_REQUIRED if ca_certs else ssl.CERT_NONE
    return as_cert_reqs(cert_reqs)


def _shown(path: str | os.PathLike[str]) -> str:
    return repr(os.fspath(path))


def _read_pem(path: str | os.PathLike[str], setting: str) -> str:
    """The text of a PEM file, or a one-line error naming the setting and the file."""
    try:
        with open(path, "rb") as file:
            data = file.read(_MAX_PEM + 1)
    except IsADirectoryError:
        raise ServiceConfigurationError(
            f"{setting} {_shown(path)} is a directory, not a PEM file"
        ) from None
    except OSError as exc:
        raise ServiceConfigurationError(
            f"{setting} {_shown(path)}: {exc.strerror or exc}"
        ) from None
    if len(data) > _MAX_PEM:
        raise ServiceConfigurationError(
            f"{setting} {_shown(path)} is larger than {_MAX_PEM} bytes: not a PEM file"
        )
    return data.decode("ascii", "replace")


def check_private_key(path: str | os.PathLike[str], setting: str = "ssl_keyfile") -> None:
    """Refuse a private key file that other users can read or change.

    Args:
        path: The file holding the private key.
        setting: The setting's name, for the message.

    Raises:
        ServiceConfigurationError: The file is missing, not a file, or open to other
            users (``chmod 600`` it, or ``640`` with a group of its own).
    """
    try:
        status = os.stat(path)
    except OSError as exc:
        raise ServiceConfigurationError(
            f"{setting} {_shown(path)}: {exc.strerror or exc}"
        ) from None
    if not stat.S_ISREG(status.st_mode):
        raise ServiceConfigurationError(f"{setting} {_shown(path)} is not a file")
    if os.name == "posix" and status.st_mode & stat.S_IRWXO:
        raise ServiceConfigurationError(
            f"{setting} {_shown(path)} holds a private key that other users can read or "
            f"change (mode {stat.S_IMODE(status.st_mode):04o}): chmod 600 {os.fspath(path)}"
        )


def _load_chain(
    context: ssl.SSLContext,
    certfile: str | os.PathLike[str],
    keyfile: str | os.PathLike[str] | None,
    password: str | None,
    prefix: str,
) -> None:
    cert_setting, key_setting = f"{prefix}certfile", f"{prefix}keyfile"
    cert_text = _read_pem(certfile, cert_setting)
    if _CERTIFICATE not in cert_text:
        raise ServiceConfigurationError(
            f"{cert_setting} {_shown(certfile)} holds no PEM certificate"
        )
    if keyfile:
        key_path, key_text, holder = keyfile, _read_pem(keyfile, key_setting), key_setting
    else:  # a certificate file may hold the key too
        key_path, key_text, holder = certfile, cert_text, cert_setting
    if _PRIVATE_KEY not in key_text:
        missing = f"{key_setting} is not set and {cert_setting}" if not keyfile else key_setting
        raise ServiceConfigurationError(f"{missing} {_shown(key_path)} holds no PEM private key")
    check_private_key(key_path, holder)
    encrypted = "ENCRYPTED" in key_text

    def no_password() -> str:
        raise ServiceConfigurationError(
            f"{holder} {_shown(key_path)} is encrypted: set {prefix}keyfile_password"
        )

    try:
        context.load_cert_chain(certfile, keyfile or None, password if password else no_password)
    except ssl.SSLError as exc:
        if exc.reason == "KEY_VALUES_MISMATCH":
            raise ServiceConfigurationError(
                f"{cert_setting} {_shown(certfile)} and {holder} {_shown(key_path)} do not "
                "match: the key is not the certificate's"
            ) from None
        if encrypted and password:
            raise ServiceConfigurationError(
                f"{holder} {_shown(key_path)} cannot be decrypted with {prefix}keyfile_password"
            ) from None
        raise ServiceConfigurationError(
            f"{cert_setting} {_shown(certfile)} / {holder} {_shown(key_path)} cannot be "
            f"loaded: {exc.reason or exc}"
        ) from None


def _load_cas(context: ssl.SSLContext, ca_certs: str | os.PathLike[str], setting: str) -> None:
    if Path(ca_certs).is_dir():
        context.load_verify_locations(capath=os.fspath(ca_certs))
        return
    if _CERTIFICATE not in _read_pem(ca_certs, setting):
        raise ServiceConfigurationError(f"{setting} {_shown(ca_certs)} holds no PEM CA certificate")
    try:
        context.load_verify_locations(cafile=os.fspath(ca_certs))
    except ssl.SSLError as exc:
        raise ServiceConfigurationError(
            f"{setting} {_shown(ca_certs)} cannot be loaded: {exc.reason or exc}"
        ) from None


def server_context(
    certfile: str | os.PathLike[str] | None,
    keyfile: str | os.PathLike[str] | None = None,
    *,
    password: str | None = None,
    ca_certs: str | os.PathLike[str] | None = None,
    cert_reqs: Any = None,
    prefix: str = "ssl_",
) -> ssl.SSLContext:
    """The TLS context of a server.

    Args:
        certfile: The server's certificate chain (PEM), leaf first; it may hold the key.
        keyfile: The private key (PEM); refused if other users can read it.
        password: The key's password, if it is encrypted.
        ca_certs: The CA bundle (a PEM file or an OpenSSL hashed directory) client
            certificates are verified against; nothing else is trusted for them.
        cert_reqs: Whether clients must present a certificate (``none``, ``optional``,
            ``required``); unset: ``required`` with ``ca_certs``, else ``none``.
        prefix: Put before the setting names in error messages.

    Raises:
        ServiceConfigurationError: A file is missing, unreadable, not PEM, a key open to
            other users, or a key that is not the certificate's; or client certificates
            are asked for without ``ca_certs``.
    """
    if not certfile:
        raise ServiceConfigurationError(f"{prefix}certfile is not set: TLS needs a certificate")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_COMPRESSION
    _load_chain(context, certfile, keyfile, password, prefix)
    try:
        mode = effective_cert_reqs(cert_reqs, ca_certs)
    except (TypeError, ValueError) as exc:
        raise ServiceConfigurationError(f"{prefix}cert_reqs {cert_reqs!r}: {exc}") from None
    if mode != ssl.CERT_NONE and not ca_certs:
        raise ServiceConfigurationError(
            f"{prefix}cert_reqs={_REQS_NAMES[mode]} needs {prefix}ca_certs: the CA bundle "
            "client certificates are verified against"
        )
    if ca_certs:
        _load_cas(context, ca_certs, f"{prefix}ca_certs")
    context.verify_mode = mode
    return context


def reload_server_context(
    context: ssl.SSLContext,
    certfile: str | os.PathLike[str] | None,
    keyfile: str | os.PathLike[str] | None = None,
    *,
    password: str | None = None,
    ca_certs: str | os.PathLike[str] | None = None,
    cert_reqs: Any = None,
    prefix: str = "ssl_",
) -> None:
    """Load the files again into a server's live ``context`` (certificate rotation).

    The files are first loaded into a new context, so a bad file leaves ``context`` as it
    was. New handshakes use the new certificate and key; connections already open keep
    theirs. CA certificates added to ``ca_certs`` are trusted from then on; one removed
    from it stays trusted until the process restarts (OpenSSL can add to a context's
    store, not remove from it).

    Raises:
        ServiceConfigurationError: As :func:`server_context`; ``context`` is unchanged.
    """
    server_context(
        certfile, keyfile, password=password, ca_certs=ca_certs, cert_reqs=cert_reqs, prefix=prefix
    )
    assert certfile  # checked just above
    context.load_cert_chain(certfile, keyfile or None, password)
    if ca_certs:
        _load_cas(context, ca_certs, f"{prefix}ca_certs")


def check_client_files(
    ca_certs: str | os.PathLike[str] | None = None,
    certfile: str | os.PathLike[str] | None = None,
    keyfile: str | os.PathLike[str] | None = None,
    *,
    prefix: str = "ssl_",
) -> None:
    """Check the files a client hands to another library (redis-py, the etcd client).

    The CA bundle and the certificate must be PEM files, and the private key must be
    private (:func:`check_private_key`); a key without a certificate, or a certificate
    without a key, is refused.

    Raises:
        ServiceConfigurationError: One line naming the setting and the file.
    """
    if keyfile and not certfile:
        raise ServiceConfigurationError(
            f"{prefix}keyfile is set without {prefix}certfile (the client certificate)"
        )
    if (
        ca_certs
        and not Path(ca_certs).is_dir()
        and _CERTIFICATE not in _read_pem(ca_certs, f"{prefix}ca_certs")
    ):
        raise ServiceConfigurationError(
            f"{prefix}ca_certs {_shown(ca_certs)} holds no PEM CA certificate"
        )
    if certfile:
        probe = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        _load_chain(probe, certfile, keyfile, None, prefix)


def redis_tls_options(
    url: str,
    ca_certs: str | None = None,
    certfile: str | None = None,
    keyfile: str | None = None,
) -> dict[str, str]:
    """The TLS keyword arguments of redis-py's ``from_url`` for ``url`` and these files.

    Checked first (:func:`check_client_files`); they need a ``rediss://`` URL.

    Raises:
        ServiceConfigurationError: A file is unfit, or TLS files come with a URL that
            is not ``rediss://``.
    """
    given = {"ssl_ca_certs": ca_certs, "ssl_certfile": certfile, "ssl_keyfile": keyfile}
    options = {name: os.fspath(value) for name, value in given.items() if value}
    if not options:
        return {}
    if not url.startswith("rediss://"):
        raise ServiceConfigurationError(
            f"{', '.join(options)} given for a Redis URL that is not rediss:// (TLS): "
            "use rediss://host:6380/0"
        )
    check_client_files(ca_certs, certfile, keyfile)
    return options


_warned_unverified = False
_contexts: collections.OrderedDict[tuple[Any, ...], ssl.SSLContext] = collections.OrderedDict()
_MAX_CACHED: Final = 32


def _signature(*paths: str | os.PathLike[str] | None) -> tuple[Any, ...]:
    # A file replaced on disk (a rotated certificate) gives another signature.
    found: list[Any] = []
    for path in paths:
        if not path:
            found.append(None)
            continue
        try:
            status = os.stat(path)
        except OSError:
            found.append((os.fspath(path), None))
        else:
            found.append((os.fspath(path), status.st_mtime_ns, status.st_size, status.st_ino))
    return tuple(found)


def client_context(
    ca_certs: str | os.PathLike[str] | None = None,
    certfile: str | os.PathLike[str] | None = None,
    keyfile: str | os.PathLike[str] | None = None,
    *,
    password: str | None = None,
    verify: bool = True,
    prefix: str = "ssl_",
) -> ssl.SSLContext:
    """The TLS context of a client: verify the server, maybe present a certificate.

    Contexts are cached (at most 32) by their settings and their files' modification
    times, so clients made per call share one, and a file replaced on disk is read again.

    Args:
        ca_certs: The CA bundle (PEM file or hashed directory) servers are verified
            against, instead of the system store.
        certfile: A client certificate to present (mutual TLS); it may hold the key.
        keyfile: Its private key; refused if other users can read it.
        password: The key's password, if it is encrypted.
        verify: ``False`` turns verification off (any server is accepted, so anyone on
            the network path can read and change the traffic); a warning is logged once
            per process.
        prefix: Put before the setting names in error messages.

    Raises:
        ServiceConfigurationError: A file is missing, unreadable, not PEM, or a key is
            open to other users.
    """
    global _warned_unverified
    if keyfile and not certfile:
        raise ServiceConfigurationError(
            f"{prefix}keyfile is set without {prefix}certfile (the client certificate)"
        )
    key = (
        prefix,
        verify,
        password,
        *_signature(ca_certs, certfile, keyfile),
    )
    context = _contexts.get(key)
    if context is None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # host names checked, CERT_REQUIRED
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if not verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        elif ca_certs:
            _load_cas(context, ca_certs, f"{prefix}ca_certs")
        else:
            context.load_default_certs(ssl.Purpose.SERVER_AUTH)
        if certfile:
            _load_chain(context, certfile, keyfile, password, prefix)
        _contexts[key] = context
        while len(_contexts) > _MAX_CACHED:
            _contexts.popitem(last=False)
    else:
        _contexts.move_to_end(key)
    if not verify and not _warned_unverified:
        _warned_unverified = True
        _log.warning(
            "TLS certificate verification is off (%sverify=False): any server is accepted, "
            "so anyone on the network path can read and change these calls; give the CA "
            "bundle that signed the server's certificate (%sca_certs) instead",
            prefix,
            prefix,
        )
    return context


_NAMES: Final = {
    "commonName": "CN",
    "organizationName": "O",
    "organizationalUnitName": "OU",
    "countryName": "C",
    "stateOrProvinceName": "ST",
    "localityName": "L",
    "domainComponent": "DC",
    "emailAddress": "emailAddress",
    "serialNumber": "serialNumber",
}


def _distinguished_name(rdns: Any) -> tuple[str, str | None]:
    parts: list[str] = []
    common_name: str | None = None
    for rdn in rdns or ():
        for attribute, value in rdn:
            parts.append(f"{_NAMES.get(attribute, attribute)}={value}")
            if attribute == "commonName" and common_name is None:
                common_name = str(value)
    return ",".join(parts), common_name


@dataclass(frozen=True, slots=True)
class CertificateIdentity:
    """The verified certificate of a caller (mutual TLS).

    A service that verifies client certificates (``ssl_ca_certs``) admits callers to
    private methods by certificate name with ``ssl_allowed_clients``; methods then see
    this object as ``handler.identity``. ``authenticate_request`` reads it with
    :func:`peer_certificate`.

    Attributes:
        subject: The subject's distinguished name, e.g. ``CN=orders,O=Shop``.
        common_name: The subject's common name (CN), if any.
        dns_names: The DNS names among the subject alternative names.
        uris: The URIs among them (SPIFFE ids, for instance).
        emails: The e-mail addresses among them.
        issuer: The issuer's distinguished name.
        serial_number: The certificate's serial number (hexadecimal).
        not_after: When the certificate expires, as OpenSSL prints it.
    """

    subject: str
    common_name: str | None = None
    dns_names: tuple[str, ...] = ()
    uris: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()
    issuer: str = ""
    serial_number: str = ""
    not_after: str = ""

    @property
    def names(self) -> tuple[str, ...]:
        """Every name of the certificate: its common name, then its DNS names, URIs and e-mails."""
        found = [self.common_name] if self.common_name else []
        found += [*self.dns_names, *self.uris, *self.emails]
        return tuple(dict.fromkeys(found))

    def matches(self, allowed: Collection[str]) -> bool:
        """Whether one of the certificate's :attr:`names` is in ``allowed`` (exactly)."""
        return any(name in allowed for name in self.names)

    @classmethod
    def from_peercert(cls, certificate: Mapping[str, Any]) -> CertificateIdentity:
        """Read :meth:`ssl.SSLSocket.getpeercert`'s dictionary."""
        subject, common_name = _distinguished_name(certificate.get("subject"))
        issuer, _ = _distinguished_name(certificate.get("issuer"))
        alternative: dict[str, list[str]] = {}
        for kind, value in certificate.get("subjectAltName") or ():
            alternative.setdefault(str(kind), []).append(str(value))
        return cls(
            subject=subject,
            common_name=common_name,
            dns_names=tuple(alternative.get("DNS", ())),
            uris=tuple(alternative.get("URI", ())),
            emails=tuple(alternative.get("email", ())),
            issuer=issuer,
            serial_number=str(certificate.get("serialNumber", "")),
            not_after=str(certificate.get("notAfter", "")),
        )

    def __str__(self) -> str:
        return self.subject or (self.names[0] if self.names else "(no name)")


def peer_certificate(request: Any) -> CertificateIdentity | None:
    """The verified certificate of the caller of ``request``, or ``None``.

    ``None`` when the connection is not TLS, the caller presented no certificate, or
    the service does not verify client certificates (``ssl_ca_certs`` unset or
    ``ssl_cert_reqs`` none): an unverified certificate is never returned.

    Args:
        request: The aiohttp request (what ``authenticate_request`` receives), or
            anything whose ``transport`` has asyncio's ``get_extra_info``.
    """
    transport = getattr(request, "transport", None)
    if transport is None:
        return None
    certificate = transport.get_extra_info("peercert")
    if not certificate:
        return None
    return CertificateIdentity.from_peercert(certificate)
