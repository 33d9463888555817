"""X-Road, the platform of SCD's Interoperabilidad: identifiers, metaservices, global
configuration, and an async client for security servers and configuration sources.

Modules: :mod:`~scd_monitor.xroad.identifiers` (``INSTANCE/CLASS/MEMBER[/SUBSYSTEM]``),
:mod:`~scd_monitor.xroad.xml` (safe parsing), :mod:`~scd_monitor.xroad.metaservices`
(request builders and answer parsers), :mod:`~scd_monitor.xroad.globalconf` (signed
directory, shared parameters), :mod:`~scd_monitor.xroad.opmon` (operational monitoring:
health data, operational data records), :mod:`~scd_monitor.xroad.client` (the network
side), :mod:`~scd_monitor.xroad.errors` (what is raised). The protocol documents followed are
named in each module's docstring.
"""

from __future__ import annotations

from scd_monitor.xroad.client import (
    HealthReport,
    HealthStatus,
    SecurityServerClient,
    check_health,
    fetch_globalconf,
)
from scd_monitor.xroad.errors import (
    FailureKind,
    Side,
    XRoadError,
    XRoadFailure,
    XRoadProtocolError,
    XRoadStatusError,
    XRoadTransportError,
    fault_side,
)
from scd_monitor.xroad.globalconf import (
    CentralService,
    ConfigurationAnchor,
    ConfigurationDirectory,
    DirectoryPart,
    GlobalConf,
    Member,
    SecurityServer,
    SharedParameters,
    parse_configuration_anchor,
    parse_configuration_directory,
    parse_shared_parameters,
    verify_directory_signature,
    verify_part,
)
from scd_monitor.xroad.identifiers import CentralServiceId, ClientId, ServiceId
from scd_monitor.xroad.metaservices import (
    ListedClient,
    OpenApiDescription,
    RestEndpoint,
    ServiceEntry,
    SoapHeader,
    build_get_wsdl_request,
    build_method_list_request,
    build_soap_request,
    parse_get_wsdl_response,
    parse_list_central_services,
    parse_list_clients_json,
    parse_list_clients_xml,
    parse_openapi,
    parse_rest_error,
    parse_rest_method_list,
    parse_soap_fault,
    parse_soap_header,
    parse_soap_method_list,
)
from scd_monitor.xroad.opmon import (
    HealthData,
    OperationalDataPage,
    OperationalRecord,
    SecurityServerId,
    ServiceHealth,
    build_health_data_request,
    build_operational_data_request,
    parse_health_data_response,
    parse_operational_data_response,
)
from scd_monitor.xroad.xml import DEFAULT_MAX_BYTES, parse_xml

__all__ = [
    "DEFAULT_MAX_BYTES",
    "CentralService",
    "CentralServiceId",
    "ClientId",
    "ConfigurationAnchor",
    "ConfigurationDirectory",
    "DirectoryPart",
    "FailureKind",
    "GlobalConf",
    "HealthData",
    "HealthReport",
    "HealthStatus",
    "ListedClient",
    "Member",
    "OpenApiDescription",
    "OperationalDataPage",
    "OperationalRecord",
    "RestEndpoint",
    "SecurityServer",
    "SecurityServerClient",
    "SecurityServerId",
    "ServiceEntry",
    "ServiceHealth",
    "ServiceId",
    "SharedParameters",
    "Side",
    "SoapHeader",
    "XRoadError",
    "XRoadFailure",
    "XRoadProtocolError",
    "XRoadStatusError",
    "XRoadTransportError",
    "build_get_wsdl_request",
    "build_health_data_request",
    "build_method_list_request",
    "build_operational_data_request",
    "build_soap_request",
    "check_health",
    "fault_side",
    "fetch_globalconf",
    "parse_configuration_anchor",
    "parse_configuration_directory",
    "parse_get_wsdl_response",
    "parse_health_data_response",
    "parse_list_central_services",
    "parse_list_clients_json",
    "parse_list_clients_xml",
    "parse_openapi",
    "parse_operational_data_response",
    "parse_rest_error",
    "parse_rest_method_list",
    "parse_shared_parameters",
    "parse_soap_fault",
    "parse_soap_header",
    "parse_soap_method_list",
    "parse_xml",
    "verify_directory_signature",
    "verify_part",
]
