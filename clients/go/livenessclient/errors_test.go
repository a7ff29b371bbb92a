package livenessclient

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

func TestFromErrorUnpacksDetails(t *testing.T) {
	st, err := status.New(codes.ResourceExhausted, "slow down").WithDetails(
		&errdetails.ErrorInfo{Reason: ReasonRateLimitExceeded, Domain: Domain,
			Metadata: map[string]string{"vendor": "linkface", "httpStatus": "403"}},
		&errdetails.RetryInfo{RetryDelay: durationpb.New(7 * time.Second)},
	)
	if err != nil {
		t.Fatal(err)
	}
	wrapped := fmt.Errorf("calling: %w", st.Err())
	e := FromError(wrapped)
	if e.Code != codes.ResourceExhausted || e.Reason != ReasonRateLimitExceeded || e.Domain != Domain {
		t.Fatalf("got %+v", e)
	}
	if e.Metadata["vendor"] != "linkface" || !e.HasRetryInfo || e.RetryDelay != 7*time.Second {
		t.Fatalf("got %+v", e)
	}
	if status.Code(e) != codes.ResourceExhausted || Reason(wrapped) != ReasonRateLimitExceeded {
		t.Fatalf("status.Code or Reason do not see through the wrapper")
	}
	var again *Error
	if !errors.As(error(e), &again) || again != e || FromError(e) != e {
		t.Fatal("FromError is not idempotent")
	}
}

func TestFromErrorWithoutDetails(t *testing.T) {
	e := FromError(errors.New("boom"))
	if e.Code != codes.Unknown || e.Reason != "" || e.HasRetryInfo || e.RetryDelay != 0 {
		t.Fatalf("got %+v", e)
	}
	if FromError(nil) != nil || Reason(nil) != "" {
		t.Fatal("nil must stay nil")
	}
}
