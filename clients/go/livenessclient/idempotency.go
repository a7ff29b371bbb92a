package livenessclient

import (
	"crypto/rand"
	"fmt"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	livenessv1 "github.com/liveness-gateway/liveness-gateway/clients/go/livenessv1"
)

// The idempotency key (AIP-155) is the request_id field of UploadRequest, DetectRequest and
// AntiHackRequest: a UUID in its canonical 36-character form. Within the gateway's idempotency
// window, the same caller sending the same key with the same input gets the first call's
// result (or error) without a second vendor call; the same key with a different input is
// refused INVALID_ARGUMENT, reason REQUEST_ID_REUSED. It is not the x-request-id correlation
// id (RequestIDKey), which names one call in the gateway's logs and differs per call.
//
// Upload creates an object at the vendor, so the client gives every Upload a key when the
// request has none: one per Upload call, sent unchanged on every attempt gRPC makes, and
// returned on the result and the error (IdempotencyKey) so that a resend of the same upload
// can carry it. Detect and AntiHack are reads at the vendor, which the gateway itself retries:
// the client sends a key only when the caller set one (for a caller that must not pay twice
// for a resent score, or must get the same score back).

// NewIdempotencyKey returns a random (version 4) UUID in its canonical form, the key Upload
// sends when the request has none. Set it as a request's RequestId before the first attempt
// and keep it for resends of the same request.
func NewIdempotencyKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:])  // crypto/rand.Read never fails (Go 1.24+)
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // the RFC 9562 variant
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// ValidIdempotencyKey reports whether key is a UUID in its canonical 36-character form
// (8-4-4-4-12 hex digits, either case), the form the gateway accepts as a request_id.
func ValidIdempotencyKey(key string) bool {
	if len(key) != 36 {
		return false
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}

// invalidKeyError is the gateway's answer to a malformed request_id, made by the client before
// sending anything: INVALID_ARGUMENT, reason INVALID_REQUEST, a BadRequest naming request_id.
// Handling it needs no other code than handling the gateway's own.
func invalidKeyError(key, requestID string) *Error {
	st := status.New(codes.InvalidArgument,
		"request_id must be a UUID in its canonical 36-character form (checked by the client; nothing was sent)")
	if withDetails, err := st.WithDetails(
		&errdetails.ErrorInfo{Reason: livenessv1.ErrorReason_INVALID_REQUEST.String(), Domain: Domain},
		&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{
			Field:       "request_id",
			Description: fmt.Sprintf("%q is not a UUID (8-4-4-4-12 hex digits)", truncate(key, 64)),
		}}},
	); err == nil {
		st = withDetails
	}
	e := FromError(st.Err())
	e.RequestID = requestID
	e.IdempotencyKey = key
	return e
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
