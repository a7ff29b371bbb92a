package livenessclient

import (
	"errors"
	"fmt"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Domain is the ErrorInfo domain of every error the gateway produces.
const Domain = "liveness.v1"

// ErrorInfo reasons callers commonly branch on. The full list, with the gRPC code of each,
// is the error table in the gateway's README; a vendor may add reasons not listed here.
const (
	ReasonInvalidRequest    = "INVALID_REQUEST"
	ReasonRateLimitExceeded = "RATE_LIMIT_EXCEEDED"
	ReasonOutOfQuota        = "OUT_OF_QUOTA"
	ReasonVendorUnreachable = "VENDOR_UNREACHABLE"
	ReasonVendorTimeout     = "VENDOR_TIMEOUT"
	ReasonVendorBadReply    = "VENDOR_BAD_REPLY"
	ReasonVendorHTTPError   = "VENDOR_HTTP_ERROR"
	ReasonDeadlineExceeded  = "DEADLINE_EXCEEDED"
	ReasonGatewayInternal   = "GATEWAY_INTERNAL"
)

// Error is a failed call with the gateway's rich error details unpacked. Fields the server
// did not send are zero: Reason is "" for errors that never reached the gateway (e.g. a
// refused connection), RetryDelay is 0 without a google.rpc.RetryInfo.
type Error struct {
	Code     codes.Code
	Message  string
	Reason   string            // ErrorInfo.reason, e.g. "OUT_OF_QUOTA"
	Domain   string            // ErrorInfo.domain, "liveness.v1"
	Metadata map[string]string // ErrorInfo.metadata: vendor, httpStatus, vendorRequestId
	// RetryDelay is RetryInfo.retry_delay: wait this long before retrying. Zero when the
	// server sent no RetryInfo (the failure is not a retryable rate limit).
	RetryDelay time.Duration
	// HasRetryInfo tells a RetryInfo of 0 s apart from none.
	HasRetryInfo bool
	status       *status.Status
}

// Error implements error.
func (e *Error) Error() string {
	if e.Reason == "" {
		return fmt.Sprintf("liveness: %s: %s", e.Code, e.Message)
	}
	return fmt.Sprintf("liveness: %s (%s): %s", e.Code, e.Reason, e.Message)
}

// GRPCStatus lets status.FromError and status.Code see through the wrapper.
func (e *Error) GRPCStatus() *status.Status { return e.status }

// Details returns every detail message of the status (ErrorInfo, RetryInfo, QuotaFailure,
// BadRequest, ...), for the ones this type does not unpack.
func (e *Error) Details() []any { return e.status.Details() }

// FromError unpacks err, which may wrap a gRPC status error. An error that is not a gRPC
// status becomes an *Error with code Unknown.
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
			if e.Reason == "" {
				e.Reason, e.Domain, e.Metadata = d.GetReason(), d.GetDomain(), d.GetMetadata()
			}
		case *errdetails.RetryInfo:
			if d.GetRetryDelay() != nil {
				e.RetryDelay = d.GetRetryDelay().AsDuration()
			}
			e.HasRetryInfo = true
		}
	}
	return e
}

// Reason returns the ErrorInfo reason of err, or "" when it carries none.
func Reason(err error) string {
	if err == nil {
		return ""
	}
	return FromError(err).Reason
}
