// Command detect scores one liveness-data file (or a sandbox vector) with the gateway.
//
//	go run ./examples/detect -target localhost:50051 'SANDBOX:score=0.995'
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/liveness-gateway/liveness-gateway/clients/go/livenessclient"
	livenessv1 "github.com/liveness-gateway/liveness-gateway/clients/go/livenessv1"
)

func main() {
	target := flag.String("target", envOr("LIVENESS_TARGET", "localhost:50051"), "gateway address")
	file := flag.String("file", "", "read the liveness data from this file instead of the argument")
	flag.Parse()
	data := []byte(flag.Arg(0))
	if *file != "" {
		var err error
		if data, err = os.ReadFile(*file); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
	}
	if len(data) == 0 {
		data = []byte("SANDBOX:score=0.995")
	}

	client, err := livenessclient.New(*target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	defer client.Close()

	// No deadline of its own: the client's default (livenessclient.DefaultTimeout) applies.
	reply, err := client.Detect(context.Background(), &livenessv1.DetectRequest{
		Source: &livenessv1.DetectRequest_LivenessData{LivenessData: data}})
	var lerr *livenessclient.Error
	switch {
	case err == nil:
		fmt.Printf("score=%v verdict=%s threshold=%v request_id=%s\n",
			reply.GetScore(), reply.GetVerdict(), reply.GetThreshold(), reply.RequestID)
	case errors.As(err, &lerr) && lerr.HasRetryInfo:
		fmt.Printf("failed: code=%s reason=%s request_id=%s: try again in %s\n",
			lerr.Code, lerr.Reason, lerr.RequestID, lerr.RetryDelay)
		os.Exit(1)
	case errors.As(err, &lerr):
		fmt.Printf("failed: code=%s reason=%s request_id=%s metadata=%v\n",
			lerr.Code, lerr.Reason, lerr.RequestID, lerr.Metadata)
		os.Exit(1)
	}
}

func envOr(key, fallback string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return fallback
}
