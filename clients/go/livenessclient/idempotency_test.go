package livenessclient_test

import (
	"context"
	"net"
	"regexp"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/liveness-gateway/liveness-gateway/clients/go/livenessclient"
	livenessv1 "github.com/liveness-gateway/liveness-gateway/clients/go/livenessv1"
)

// uuidV4 is the canonical form of a random UUID: version 4, the RFC 9562 variant.
var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// recordingGateway stands in for the gateway in these unit tests (no vendor, no sandbox): it
// records the request_id and x-request-id of every attempt that reaches it, and fails the
// first failFirst attempts of each call with fail (with a 10 ms grpc-retry-pushback-ms, so
// the service config resends it).
type recordingGateway struct {
	livenessv1.UnimplementedLivenessCheckServer
	failFirst int
	fail      *status.Status

	mu       sync.Mutex
	keys     []string
	xids     []string
	attempts int
}

func (g *recordingGateway) record(ctx context.Context, key string) error {
	md, _ := metadata.FromIncomingContext(ctx)
	g.mu.Lock()
	defer g.mu.Unlock()
	g.keys = append(g.keys, key)
	g.xids = append(g.xids, md.Get("x-request-id")...)
	g.attempts++
	if g.attempts <= g.failFirst {
		_ = grpc.SetTrailer(ctx, metadata.Pairs("grpc-retry-pushback-ms", "10"))
		return g.fail.Err()
	}
	return nil
}

func (g *recordingGateway) Upload(ctx context.Context, req *livenessv1.UploadRequest) (*livenessv1.UploadResponse, error) {
	if err := g.record(ctx, req.GetRequestId()); err != nil {
		return nil, err
	}
	return &livenessv1.UploadResponse{LivenessDataId: "ld-1"}, nil
}

func (g *recordingGateway) Detect(ctx context.Context, req *livenessv1.DetectRequest) (*livenessv1.DetectResponse, error) {
	if err := g.record(ctx, req.GetRequestId()); err != nil {
		return nil, err
	}
	return &livenessv1.DetectResponse{Score: 0.5}, nil
}

func (g *recordingGateway) AntiHack(ctx context.Context, req *livenessv1.AntiHackRequest) (*livenessv1.AntiHackResponse, error) {
	if err := g.record(ctx, req.GetRequestId()); err != nil {
		return nil, err
	}
	return &livenessv1.AntiHackResponse{Score: 0.5}, nil
}

func (g *recordingGateway) seen() (keys, xids []string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.keys...), append([]string(nil), g.xids...)
}

// serve starts g on a loopback port chosen by the OS and returns a client of it with the
// client's defaults (the shipped service config).
func serve(t *testing.T, g *recordingGateway) *livenessclient.Client {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	livenessv1.RegisterLivenessCheckServer(srv, g)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	c, err := livenessclient.New(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func ctx5s(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func uploadBytes() *livenessv1.UploadRequest {
	return &livenessv1.UploadRequest{Source: &livenessv1.UploadRequest_LivenessData{LivenessData: []byte("data")}}
}

// An Upload without a request_id gets one generated key, a UUID v4, sent unchanged on the
// attempt the gateway refused and on the resend gRPC made of it; the result returns it; the
// caller's request is left as it was.
func TestUploadKeyIsGeneratedOnceForEveryAttempt(t *testing.T) {
	g := &recordingGateway{failFirst: 1, fail: status.New(codes.Unavailable, "overloaded")}
	c := serve(t, g)
	req := uploadBytes()
	res, err := c.Upload(ctx5s(t), req)
	if err != nil {
		t.Fatal(err)
	}
	keys, xids := g.seen()
	if len(keys) != 2 {
		t.Fatalf("%d attempts reached the server, want 2 (one refused, one resent)", len(keys))
	}
	if !uuidV4.MatchString(keys[0]) || keys[1] != keys[0] {
		t.Fatalf("request_id per attempt %q, want one UUID v4 on both", keys)
	}
	if res.IdempotencyKey != keys[0] || res.GetLivenessDataId() != "ld-1" {
		t.Fatalf("result %+v, want IdempotencyKey %s", res, keys[0])
	}
	// The correlation id is another thing: 32 hex digits, also the same on both attempts.
	if len(xids) != 2 || xids[0] != xids[1] || len(xids[0]) != 32 || xids[0] == keys[0] {
		t.Fatalf("x-request-id per attempt %q", xids)
	}
	if req.GetRequestId() != "" {
		t.Fatalf("the caller's request was modified: request_id %q", req.GetRequestId())
	}
	// The next Upload is another upload: another key.
	res2, err := c.Upload(ctx5s(t), req)
	if err != nil {
		t.Fatal(err)
	}
	if !uuidV4.MatchString(res2.IdempotencyKey) || res2.IdempotencyKey == res.IdempotencyKey {
		t.Fatalf("second upload's key %q, first %q", res2.IdempotencyKey, res.IdempotencyKey)
	}
}

// An Upload that fails for good still reports the key it sent, so the caller can resend the
// same upload with it; the resend carries it unchanged.
func TestFailedUploadReportsItsKeyForAResend(t *testing.T) {
	g := &recordingGateway{failFirst: 3, fail: status.New(codes.Unavailable, "vendor unreachable")}
	c := serve(t, g)
	_, err := c.Upload(ctx5s(t), uploadBytes())
	lerr := livenessclient.FromError(err)
	keys, _ := g.seen()
	if lerr == nil || lerr.Code != codes.Unavailable || len(keys) != 3 {
		t.Fatalf("got %v after %d attempts, want UNAVAILABLE after 3", err, len(keys))
	}
	if lerr.IdempotencyKey != keys[0] || keys[1] != keys[0] || keys[2] != keys[0] {
		t.Fatalf("error's key %q, attempts sent %q", lerr.IdempotencyKey, keys)
	}
	resend := uploadBytes()
	resend.RequestId = lerr.IdempotencyKey
	res, err := c.Upload(ctx5s(t), resend)
	keys, _ = g.seen()
	if err != nil || res.IdempotencyKey != lerr.IdempotencyKey || keys[len(keys)-1] != lerr.IdempotencyKey {
		t.Fatalf("resend: %v, %+v, sent %q", err, res, keys)
	}
}

// A caller's own key goes unchanged on every RPC; Detect and AntiHack send none of their own.
func TestCallersKeyIsSentAndDetectSendsNoneOfItsOwn(t *testing.T) {
	g := &recordingGateway{}
	c := serve(t, g)
	const mine = "0F8FAD5B-D9CB-469F-A165-70867728950E"
	up := uploadBytes()
	up.RequestId = mine
	res, err := c.Upload(ctx5s(t), up)
	if err != nil || res.IdempotencyKey != mine {
		t.Fatalf("upload: %v, %+v", err, res)
	}
	det, err := c.Detect(ctx5s(t), &livenessv1.DetectRequest{
		Source: &livenessv1.DetectRequest_LivenessDataId{LivenessDataId: "ld-1"}, RequestId: mine})
	if err != nil || det.IdempotencyKey != mine {
		t.Fatalf("detect: %v, %+v", err, det)
	}
	det2, err := c.Detect(ctx5s(t), &livenessv1.DetectRequest{
		Source: &livenessv1.DetectRequest_LivenessDataId{LivenessDataId: "ld-1"}})
	if err != nil || det2.IdempotencyKey != "" {
		t.Fatalf("detect without a key: %v, %+v", err, det2)
	}
	ah, err := c.AntiHack(ctx5s(t), &livenessv1.AntiHackRequest{
		Source: &livenessv1.AntiHackRequest_ImageId{ImageId: "img"}})
	if err != nil || ah.IdempotencyKey != "" {
		t.Fatalf("antihack without a key: %v, %+v", err, ah)
	}
	keys, _ := g.seen()
	if want := []string{mine, mine, "", ""}; len(keys) != 4 || keys[0] != want[0] || keys[1] != want[1] ||
		keys[2] != "" || keys[3] != "" {
		t.Fatalf("sent %q, want %q", keys, want)
	}
}

// A malformed key is refused by the client as the gateway would refuse it (INVALID_ARGUMENT,
// INVALID_REQUEST, a BadRequest naming request_id), and nothing is sent.
func TestMalformedKeyIsRefusedBeforeSending(t *testing.T) {
	g := &recordingGateway{}
	c := serve(t, g)
	for _, bad := range []string{"order-4711", "0f8fad5bd9cb469fa16570867728950e", "0f8fad5b-d9cb-469f-a165-70867728950", "0f8fad5b-d9cb-469f-a165-70867728950g"} {
		_, err := c.Detect(ctx5s(t), &livenessv1.DetectRequest{
			Source: &livenessv1.DetectRequest_LivenessDataId{LivenessDataId: "ld-1"}, RequestId: bad})
		lerr := livenessclient.FromError(err)
		if lerr == nil || lerr.Code != codes.InvalidArgument || lerr.Reason != livenessv1.ErrorReason_INVALID_REQUEST ||
			lerr.Domain != livenessclient.Domain || len(lerr.FieldViolations) != 1 ||
			lerr.FieldViolations[0].Field != "request_id" || lerr.IdempotencyKey != bad || len(lerr.RequestID) != 32 {
			t.Fatalf("%q: got %+v", bad, lerr)
		}
		up := uploadBytes()
		up.RequestId = bad
		if _, err := c.Upload(ctx5s(t), up); livenessclient.Reason(err) != livenessv1.ErrorReason_INVALID_REQUEST {
			t.Fatalf("upload %q: got %v", bad, err)
		}
	}
	if keys, _ := g.seen(); len(keys) != 0 {
		t.Fatalf("%d calls reached the server", len(keys))
	}
}

// REQUEST_ID_REUSED arrives as the typed reason with its BadRequest, is not resent, and the
// error names the key.
func TestRequestIDReusedIsTypedAndNotResent(t *testing.T) {
	st, err := status.New(codes.InvalidArgument, "request_id was used for another input").WithDetails(
		&errdetails.ErrorInfo{Reason: "REQUEST_ID_REUSED", Domain: livenessclient.Domain},
		&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{
			{Field: "request_id", Description: "used before with another input"}}})
	if err != nil {
		t.Fatal(err)
	}
	g := &recordingGateway{failFirst: 3, fail: st}
	c := serve(t, g)
	up := uploadBytes()
	up.RequestId = livenessclient.NewIdempotencyKey()
	_, err = c.Upload(ctx5s(t), up)
	lerr := livenessclient.FromError(err)
	if lerr == nil || lerr.Code != codes.InvalidArgument || lerr.Reason != livenessv1.ErrorReason_REQUEST_ID_REUSED ||
		lerr.IdempotencyKey != up.RequestId || len(lerr.FieldViolations) != 1 {
		t.Fatalf("got %+v", lerr)
	}
	if keys, _ := g.seen(); len(keys) != 1 {
		t.Fatalf("%d attempts, want 1: INVALID_ARGUMENT is never resent", len(keys))
	}
}

func TestIdempotencyKeyForm(t *testing.T) {
	for i := 0; i < 100; i++ {
		if k := livenessclient.NewIdempotencyKey(); !uuidV4.MatchString(k) || !livenessclient.ValidIdempotencyKey(k) {
			t.Fatalf("NewIdempotencyKey() = %q", k)
		}
	}
	for key, want := range map[string]bool{
		"0f8fad5b-d9cb-469f-a165-70867728950e":   true,
		"0F8FAD5B-D9CB-469F-A165-70867728950E":   true,
		"00000000-0000-0000-0000-000000000000":   true, // any UUID, not only v4: the gateway's rule
		"":                                       false,
		"{0f8fad5b-d9cb-469f-a165-70867728950e}": false,
		"0f8fad5b-d9cb-469f-a165-70867728950e ":  false,
		"0f8fad5bd9cb-469f-a165-70867728950e-":   false,
		"urn:uuid:0f8fad5b-d9cb-469f-a165-7086":  false,
	} {
		if got := livenessclient.ValidIdempotencyKey(key); got != want {
			t.Errorf("ValidIdempotencyKey(%q) = %v", key, got)
		}
	}
}
