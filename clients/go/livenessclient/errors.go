package livenessclient

import (
	"errors"
	"fmt"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	livenessv1 "github.com/liveness-gateway/liveness-gateway/clients/go/livenessv1"
)

// Domain is the ErrorInfo domain of every error the gateway produces.
const Domain = "liveness.v1"

// Error is a failed call with the gateway's rich error details unpacked. Fields the server
// did not send are zero: Reason is ERROR_REASON_UNSPECIFIED for errors that never reached
// the gateway (a refused connection, a deadline that expired in the client).
type Error struct {
	Code    codes.Code
	Message string
	// Reason is ErrorInfo.reason as the contract's enum (livenessv1.ErrorReason_OUT_OF_QUOTA,
	// ...). The catalogue is closed, but a gateway newer than this client may send a name
	// the generated enum does not know yet: then Reason is ERROR_REASON_UNSPECIFIED and
	// ReasonName still holds the name.
	Reason     livenessv1.ErrorReason
	ReasonName string            // ErrorInfo.reason as sent, e.g. "OUT_OF_QUOTA"
	Domain     string            // ErrorInfo.domain, "liveness.v1"
	Metadata   map[string]string // ErrorInfo.metadata: vendor, httpStatus, vendorRequestId, ...
	// RetryDelay is RetryInfo.retry_delay: the gateway's advice on when a resend may go.
	// The shipped service config already resends retryable failures after the advised
	// delay (grpc-retry-pushback-ms), within the call's deadline; an error that reaches the
	// caller has used those attempts, so RetryDelay is for scheduling later work.
	RetryDelay time.Duration
	// HasRetryInfo tells a RetryInfo of 0 s apart from none.
	HasRetryInfo bool
	// QuotaViolations is google.rpc.QuotaFailure: which limit was hit (CALLER_RATE_LIMITED,
	// CALLER_QUOTA_EXCEEDED, GATEWAY_RATE_LIMITED).
	QuotaViolations []QuotaViolation
	// FieldViolations is google.rpc.BadRequest: which request field failed validation
	// (INVALID_REQUEST).
	FieldViolations []FieldViolation
	// RequestID is the gateway's x-request-id for the call (from its trailing metadata), the
	// key to its logs. When no response arrived it is the id the client sent.
	RequestID string
	// IdempotencyKey is the request_id (AIP-155) the call sent: the one the client generated
	// for an Upload, or the request's own; "" when none was sent. Resend the same request
	// with it as RequestId to get the first call's outcome instead of a second vendor call.
	IdempotencyKey string
	status         *status.Status
}

// QuotaViolation is one google.rpc.QuotaFailure.Violation.
type QuotaViolation struct {
	Subject     string
	Description string
}

// FieldViolation is one google.rpc.BadRequest.FieldViolation.
type FieldViolation struct {
	Field       string
	Description string
}

// Error implements error.
func (e *Error) Error() string {
	s := fmt.Sprintf("liveness: %s", e.Code)
	if e.ReasonName != "" {
		s += fmt.Sprintf(" (%s)", e.ReasonName)
	}
	s += ": " + e.Message
	if e.RequestID != "" {
		s += fmt.Sprintf(" [request id %s]", e.RequestID)
	}
	return s
}

// GRPCStatus lets status.FromError and status.Code see through the wrapper.
func (e *Error) GRPCStatus() *status.Status { return e.status }

// Details returns every detail message of the status, for the ones this type does not unpack.
func (e *Error) Details() []any { return e.status.Details() }

// FromError unpacks err, which may wrap a gRPC status error. An error that is not a gRPC
// status becomes an *Error with code Unknown. The request id is only known to the client's
// methods (it travels in trailing metadata); FromError leaves it empty.
func FromError(err error) *Error {
	if err == nil {
		return nil
	}
	var lerr *Error
	if errors.As(err, &lerr) {
		return lerr
	}
	st, _ := status.FromError(err)
	e := &Error{Code: st.Code(), Message: st.Message(), status: st}
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.ErrorInfo:
			if e.ReasonName == "" {
				e.ReasonName, e.Domain, e.Metadata = d.GetReason(), d.GetDomain(), d.GetMetadata()
				e.Reason = ParseReason(d.GetReason())
			}
		case *errdetails.RetryInfo:
			if d.GetRetryDelay() != nil {
				e.RetryDelay = d.GetRetryDelay().AsDuration()
			}
			e.HasRetryInfo = true
		case *errdetails.QuotaFailure:
			for _, v := range d.GetViolations() {
				e.QuotaViolations = append(e.QuotaViolations,
					QuotaViolation{Subject: v.GetSubject(), Description: v.GetDescription()})
			}
		case *errdetails.BadRequest:
			for _, v := range d.GetFieldViolations() {
				e.FieldViolations = append(e.FieldViolations,
					FieldViolation{Field: v.GetField(), Description: v.GetDescription()})
			}
		}
	}
	return e
}

// ParseReason maps an ErrorInfo reason name to the enum; unknown names (and "") give
// ERROR_REASON_UNSPECIFIED.
func ParseReason(name string) livenessv1.ErrorReason {
	if name == "" {
		return livenessv1.ErrorReason_ERROR_REASON_UNSPECIFIED
	}
	return livenessv1.ErrorReason(livenessv1.ErrorReason_value[name])
}

// Reason returns the ErrorInfo reason of err as the enum, ERROR_REASON_UNSPECIFIED when it
// carries none (or err is nil).
func Reason(err error) livenessv1.ErrorReason {
	if err == nil {
		return livenessv1.ErrorReason_ERROR_REASON_UNSPECIFIED
	}
	return FromError(err).Reason
}

// RequestID returns the request id of an error a Client method returned, "" for others.
func RequestID(err error) string {
	var lerr *Error
	if errors.As(err, &lerr) {
		return lerr.RequestID
	}
	return ""
}
