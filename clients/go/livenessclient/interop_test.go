package livenessclient_test

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/liveness-gateway/liveness-gateway/clients/go/livenessclient"
	livenessv1 "github.com/liveness-gateway/liveness-gateway/clients/go/livenessv1"
)

// These tests talk to a running gateway on its sandbox, whose address is in LIVENESS_TARGET
// (`make test-clients` starts one). Without it they fail rather than skip.
func connect(t *testing.T) *livenessclient.Client {
	t.Helper()
	target := os.Getenv("LIVENESS_TARGET")
	if target == "" {
		t.Fatal("LIVENESS_TARGET is not set: run `make test-clients-go`, or start " +
			"`liveness-gateway serve --sandbox` and set LIVENESS_TARGET=host:port")
	}
	c, err := livenessclient.New(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func detect(t *testing.T, c *livenessclient.Client, data []byte) (*livenessclient.DetectResult, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return c.Detect(ctx, &livenessv1.DetectRequest{
		Source: &livenessv1.DetectRequest_LivenessData{LivenessData: data}})
}

func TestDetectHackScore(t *testing.T) {
	reply, err := detect(t, connect(t), []byte("SANDBOX:score=0.995"))
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(reply.GetScore()-0.995) > 1e-9 || reply.GetVerdict() != livenessv1.Verdict_VERDICT_HACK {
		t.Fatalf("got score %v verdict %v", reply.GetScore(), reply.GetVerdict())
	}
	if len(reply.RequestID) != 32 {
		t.Fatalf("request id %q, want the 32 hex digits the client sends", reply.RequestID)
	}
}

// A caller's own x-request-id goes to the gateway, which returns it on the result and on
// the error alike.
func TestCallersRequestID(t *testing.T) {
	c := connect(t)
	ctx := metadata.AppendToOutgoingContext(context.Background(), livenessclient.RequestIDKey, "order-4711")
	reply, err := c.Detect(ctx, &livenessv1.DetectRequest{
		Source: &livenessv1.DetectRequest_LivenessData{LivenessData: []byte("SANDBOX:score=0.3")}})
	if err != nil || reply.RequestID != "order-4711" {
		t.Fatalf("got %v, %v", reply, err)
	}
	_, err = c.Detect(ctx, &livenessv1.DetectRequest{
		Source: &livenessv1.DetectRequest_LivenessData{LivenessData: []byte("SANDBOX:status=WRONG_LIVENESS_DATA")}})
	if livenessclient.RequestID(err) != "order-4711" || livenessclient.Reason(err) != livenessv1.ErrorReason_WRONG_LIVENESS_DATA {
		t.Fatalf("got %v", err)
	}
}

// Without a deadline in the context the call gets DefaultTimeout: a vendor slower than that
// is cut off by the client's deadline, not left to hang. Checked without waiting 20 s: the
// deadline the gateway sees is in the grpc-timeout it receives, which the sandbox cannot
// show, so the test reads it back from the context the client passes to the stub.
func TestDefaultDeadline(t *testing.T) {
	var got time.Duration
	var had bool
	c, err := livenessclient.New(os.Getenv("LIVENESS_TARGET"),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithUnaryInterceptor(func(ctx context.Context, method string, req, reply any,
			cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			var d time.Time
			d, had = ctx.Deadline()
			got = time.Until(d)
			return invoker(ctx, method, req, reply, cc, opts...)
		}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Detect(context.Background(), &livenessv1.DetectRequest{
		Source: &livenessv1.DetectRequest_LivenessData{LivenessData: []byte("SANDBOX:score=0.3")}}); err != nil {
		t.Fatal(err)
	}
	if !had || got > livenessclient.DefaultTimeout || got < livenessclient.DefaultTimeout-5*time.Second {
		t.Fatalf("deadline %v (set: %v), want about %s", got, had, livenessclient.DefaultTimeout)
	}
	// A caller's own deadline is kept.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if _, err := c.Detect(ctx, &livenessv1.DetectRequest{
		Source: &livenessv1.DetectRequest_LivenessData{LivenessData: []byte("SANDBOX:score=0.3")}}); err != nil {
		t.Fatal(err)
	}
	if got > 3*time.Second {
		t.Fatalf("deadline %v, want the caller's 3 s", got)
	}
}

// A call that cannot reach any gateway still reports the request id it sent.
func TestUnreachableGatewayHasRequestID(t *testing.T) {
	c, err := livenessclient.New("127.0.0.1:1", grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = c.Detect(ctx, &livenessv1.DetectRequest{
		Source: &livenessv1.DetectRequest_LivenessData{LivenessData: []byte("SANDBOX:score=0.3")}})
	lerr := livenessclient.FromError(err)
	if lerr == nil || lerr.Code != codes.Unavailable || len(lerr.RequestID) != 32 ||
		lerr.Reason != livenessv1.ErrorReason_ERROR_REASON_UNSPECIFIED {
		t.Fatalf("got %+v", lerr)
	}
}

func TestOutOfQuotaReason(t *testing.T) {
	_, err := detect(t, connect(t), []byte("SANDBOX:status=OUT_OF_QUOTA"))
	var lerr *livenessclient.Error
	if !errors.As(err, &lerr) {
		t.Fatalf("want *livenessclient.Error, got %v", err)
	}
	if lerr.Code != codes.ResourceExhausted || lerr.Reason != livenessv1.ErrorReason_OUT_OF_QUOTA ||
		lerr.Domain != livenessclient.Domain || lerr.HasRetryInfo || len(lerr.RequestID) != 32 {
		t.Fatalf("got %+v", lerr)
	}
	if lerr.Metadata["vendor"] == "" {
		t.Fatalf("ErrorInfo metadata has no vendor: %v", lerr.Metadata)
	}
}

func TestRateLimitRetryDelay(t *testing.T) {
	// The service config resends twice, each after the advised second, before giving up.
	start := time.Now()
	_, err := detect(t, connect(t), []byte("SANDBOX:status=RATE_LIMIT_EXCEEDED;retry_after=1"))
	lerr := livenessclient.FromError(err)
	if lerr == nil || lerr.Code != codes.ResourceExhausted ||
		lerr.Reason != livenessv1.ErrorReason_RATE_LIMIT_EXCEEDED ||
		!lerr.HasRetryInfo || lerr.RetryDelay != time.Second {
		t.Fatalf("got %+v", lerr)
	}
	if elapsed := time.Since(start); elapsed < 2*time.Second {
		t.Fatalf("gave up after %s: the advised delay was not honoured twice", elapsed)
	}
}

// An advised resend that the deadline cannot fit ends the call at once with the gateway's
// answer, instead of gRPC waiting out the deadline and reporting DEADLINE_EXCEEDED alone;
// no further vendor call is made.
func TestResendPastDeadlineReturnsTheGatewaysAnswer(t *testing.T) {
	c := connect(t)
	before := sandboxCalls(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	start := time.Now()
	_, err := c.Detect(ctx, &livenessv1.DetectRequest{
		Source: &livenessv1.DetectRequest_LivenessData{LivenessData: []byte("SANDBOX:status=RATE_LIMIT_EXCEEDED;retry_after=5")}})
	elapsed := time.Since(start)
	lerr := livenessclient.FromError(err)
	if lerr == nil || lerr.Code != codes.ResourceExhausted || lerr.Reason != livenessv1.ErrorReason_RATE_LIMIT_EXCEEDED ||
		lerr.RetryDelay != 5*time.Second || len(lerr.RequestID) != 32 {
		t.Fatalf("got %+v", lerr)
	}
	if elapsed > time.Second {
		t.Fatalf("took %s: the client waited for a resend the deadline could not fit", elapsed)
	}
	if calls := sandboxCalls(t) - before; calls != 1 {
		t.Fatalf("%d vendor calls, want 1", calls)
	}
	// With time enough for the advised delay, gRPC resends after it (here: once, then the
	// deadline cannot fit the second resend).
	ctx2, cancel2 := context.WithTimeout(context.Background(), 2500*time.Millisecond)
	defer cancel2()
	start = time.Now()
	_, err = c.Detect(ctx2, &livenessv1.DetectRequest{
		Source: &livenessv1.DetectRequest_LivenessData{LivenessData: []byte("SANDBOX:status=RATE_LIMIT_EXCEEDED;retry_after=1.5")}})
	elapsed = time.Since(start)
	if livenessclient.Reason(err) != livenessv1.ErrorReason_RATE_LIMIT_EXCEEDED || elapsed < 1500*time.Millisecond || elapsed > 2400*time.Millisecond {
		t.Fatalf("after %s: %v", elapsed, err)
	}
}

func sandboxCalls(t *testing.T) int {
	t.Helper()
	sandbox := os.Getenv("LIVENESS_SANDBOX_URL")
	if sandbox == "" {
		t.Fatal("LIVENESS_SANDBOX_URL is not set: run `make test-client-go`")
	}
	return vendorCalls(t, sandbox)
}

func TestFiveMiBPayload(t *testing.T) {
	head := []byte("SANDBOX:score=0.5\n")
	data := append(head, bytes.Repeat([]byte{'x'}, 5*1024*1024-len(head))...)
	reply, err := detect(t, connect(t), data)
	if err != nil {
		t.Fatal(err)
	}
	if reply.GetScore() != 0.5 || reply.GetVerdict() != livenessv1.Verdict_VERDICT_LIVE {
		t.Fatalf("got score %v verdict %v", reply.GetScore(), reply.GetVerdict())
	}
}

func TestOversizedPayloadIsInvalidRequest(t *testing.T) {
	_, err := detect(t, connect(t), bytes.Repeat([]byte{'x'}, 5*1024*1024+1))
	lerr := livenessclient.FromError(err)
	if lerr == nil || lerr.Reason != livenessv1.ErrorReason_INVALID_REQUEST {
		t.Fatalf("want INVALID_REQUEST, got %v", err)
	}
	// The BadRequest detail names the field.
	if len(lerr.FieldViolations) == 0 || lerr.FieldViolations[0].Field == "" {
		t.Fatalf("no field violation: %+v", lerr)
	}
}

// The gateway takes the key an Upload sends; Detect sends one only when given, and an error
// names the key its call sent.
func TestUploadSendsAnIdempotencyKey(t *testing.T) {
	c := connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	up := &livenessv1.UploadRequest{Source: &livenessv1.UploadRequest_LivenessData{LivenessData: []byte("SANDBOX:score=0.3")}}
	res, err := c.Upload(ctx, up)
	if err != nil || !livenessclient.ValidIdempotencyKey(res.IdempotencyKey) || res.IdempotencyKey == res.RequestID {
		t.Fatalf("got %+v, %v", res, err)
	}
	mine := livenessclient.NewIdempotencyKey()
	up.RequestId = mine
	again, err := c.Upload(ctx, up)
	if err != nil || again.IdempotencyKey != mine {
		t.Fatalf("got %+v, %v", again, err)
	}
	byID, err := c.Detect(ctx, &livenessv1.DetectRequest{
		Source: &livenessv1.DetectRequest_LivenessDataId{LivenessDataId: again.GetLivenessDataId()}})
	if err != nil || byID.IdempotencyKey != "" {
		t.Fatalf("got %+v, %v", byID, err)
	}
	other := livenessclient.NewIdempotencyKey() // one key per request: never reuse one for another
	_, err = c.Detect(ctx, &livenessv1.DetectRequest{
		Source:    &livenessv1.DetectRequest_LivenessData{LivenessData: []byte("SANDBOX:status=NO_FACE_DETECTED")},
		RequestId: other})
	if lerr := livenessclient.FromError(err); lerr == nil || lerr.Reason != livenessv1.ErrorReason_NO_FACE_DETECTED ||
		lerr.IdempotencyKey != other {
		t.Fatalf("got %+v", lerr)
	}
}
