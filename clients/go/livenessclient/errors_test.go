package livenessclient

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	livenessv1 "github.com/liveness-gateway/liveness-gateway/clients/go/livenessv1"
)

func TestFromErrorUnpacksDetails(t *testing.T) {
	st, err := status.New(codes.ResourceExhausted, "slow down").WithDetails(
		&errdetails.ErrorInfo{Reason: "CALLER_RATE_LIMITED", Domain: Domain,
			Metadata: map[string]string{"caller": "checkout"}},
		&errdetails.RetryInfo{RetryDelay: durationpb.New(7 * time.Second)},
		&errdetails.QuotaFailure{Violations: []*errdetails.QuotaFailure_Violation{
			{Subject: "caller:checkout", Description: "20 calls per second"}}},
		&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{
			{Field: "liveness_data", Description: "empty"}}},
	)
	if err != nil {
		t.Fatal(err)
	}
	wrapped := fmt.Errorf("calling: %w", st.Err())
	e := FromError(wrapped)
	if e.Code != codes.ResourceExhausted || e.Reason != livenessv1.ErrorReason_CALLER_RATE_LIMITED ||
		e.ReasonName != "CALLER_RATE_LIMITED" || e.Domain != Domain {
		t.Fatalf("got %+v", e)
	}
	if e.Metadata["caller"] != "checkout" || !e.HasRetryInfo || e.RetryDelay != 7*time.Second {
		t.Fatalf("got %+v", e)
	}
	if len(e.QuotaViolations) != 1 || e.QuotaViolations[0] != (QuotaViolation{"caller:checkout", "20 calls per second"}) {
		t.Fatalf("quota violations %+v", e.QuotaViolations)
	}
	if len(e.FieldViolations) != 1 || e.FieldViolations[0] != (FieldViolation{"liveness_data", "empty"}) {
		t.Fatalf("field violations %+v", e.FieldViolations)
	}
	if status.Code(e) != codes.ResourceExhausted || Reason(wrapped) != livenessv1.ErrorReason_CALLER_RATE_LIMITED {
		t.Fatalf("status.Code or Reason do not see through the wrapper")
	}
	var again *Error
	if !errors.As(error(e), &again) || again != e || FromError(e) != e {
		t.Fatal("FromError is not idempotent")
	}
}

func TestFromErrorWithoutDetails(t *testing.T) {
	e := FromError(errors.New("boom"))
	if e.Code != codes.Unknown || e.Reason != livenessv1.ErrorReason_ERROR_REASON_UNSPECIFIED ||
		e.ReasonName != "" || e.HasRetryInfo || e.RetryDelay != 0 {
		t.Fatalf("got %+v", e)
	}
	if FromError(nil) != nil || Reason(nil) != livenessv1.ErrorReason_ERROR_REASON_UNSPECIFIED || RequestID(nil) != "" {
		t.Fatal("nil must stay nil")
	}
}

// A gateway newer than the client may send a reason the generated enum lacks: the name
// survives, the enum says UNSPECIFIED.
func TestUnknownReasonKeepsItsName(t *testing.T) {
	st, _ := status.New(codes.Internal, "new").WithDetails(
		&errdetails.ErrorInfo{Reason: "SOMETHING_NEW", Domain: Domain})
	e := FromError(st.Err())
	if e.Reason != livenessv1.ErrorReason_ERROR_REASON_UNSPECIFIED || e.ReasonName != "SOMETHING_NEW" {
		t.Fatalf("got %+v", e)
	}
	if ParseReason("OVERLOADED") != livenessv1.ErrorReason_OVERLOADED || ParseReason("") != 0 {
		t.Fatal("ParseReason")
	}
}

// The embedded service config is valid JSON with the retry policy the contract relies on.
func TestServiceConfigEmbedded(t *testing.T) {
	for _, want := range []string{`"liveness.v1.LivenessCheck"`, `"retryPolicy"`, `"retryThrottling"`} {
		if !strings.Contains(ServiceConfig(), want) {
			t.Fatalf("service config lacks %s:\n%s", want, ServiceConfig())
		}
	}
}
