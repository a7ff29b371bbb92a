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

func detect(t *testing.T, c *livenessclient.Client, data []byte) (*livenessv1.DetectResponse, error) {
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
}

func TestOutOfQuotaReason(t *testing.T) {
	_, err := detect(t, connect(t), []byte("SANDBOX:status=OUT_OF_QUOTA"))
	var lerr *livenessclient.Error
	if !errors.As(err, &lerr) {
		t.Fatalf("want *livenessclient.Error, got %v", err)
	}
	if lerr.Code != codes.ResourceExhausted || lerr.Reason != livenessclient.ReasonOutOfQuota ||
		lerr.Domain != livenessclient.Domain || lerr.HasRetryInfo {
		t.Fatalf("got %+v", lerr)
	}
	if lerr.Metadata["vendor"] == "" {
		t.Fatalf("ErrorInfo metadata has no vendor: %v", lerr.Metadata)
	}
}

func TestRateLimitRetryDelay(t *testing.T) {
	_, err := detect(t, connect(t), []byte("SANDBOX:status=RATE_LIMIT_EXCEEDED;retry_after=7"))
	lerr := livenessclient.FromError(err)
	if lerr == nil || lerr.Code != codes.ResourceExhausted ||
		lerr.Reason != livenessclient.ReasonRateLimitExceeded ||
		!lerr.HasRetryInfo || lerr.RetryDelay != 7*time.Second {
		t.Fatalf("got %+v", lerr)
	}
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
	if r := livenessclient.Reason(err); r != livenessclient.ReasonInvalidRequest {
		t.Fatalf("want %s, got %v", livenessclient.ReasonInvalidRequest, err)
	}
}
