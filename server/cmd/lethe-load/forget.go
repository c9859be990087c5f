package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"connectrpc.com/connect"

	monitorv1 "github.com/lethehq/lethe/gen/go/lethe/monitor/v1"
	"github.com/lethehq/lethe/gen/go/lethe/monitor/v1/monitorv1connect"
	"github.com/lethehq/lethe/server/ids"
)

// forget times "Forget me now": the chat, its visit and everything in them
// are to be gone from every file when ForgetMe answers.
func forget(ctx context.Context, url, data, email, password, account string, chats, messages int) error {
	if data == "" {
		return errors.New("-data is required for scenario forget")
	}
	op, err := operator(ctx, url, email, password)
	if err != nil {
		return err
	}
	var answer, scan []time.Duration
	for i := range chats {
		canary := "canary-" + ids.New()
		mon := monitorv1connect.NewMonitorServiceClient(clientFrom(addr(5, i), true), url)
		tr, err := mon.Track(ctx, connect.NewRequest(&monitorv1.TrackRequest{AccountId: account,
			Page: &monitorv1.Page{Url: "https://shop.example/" + canary, Title: canary}}))
		if err != nil {
			return fmt.Errorf("chat %d: track: %w", i, err)
		}
		sd := connect.NewRequest(&monitorv1.SetCustomDataRequest{Data: map[string]string{"ref": canary}})
		sd.Header().Set("Authorization", "Bearer "+tr.Msg.VisitToken)
		if _, err := mon.SetCustomData(ctx, sd); err != nil {
			return fmt.Errorf("chat %d: custom data: %w", i, err)
		}
		v, err := canaryChat(ctx, op, url, data, account, canary, i, messages)
		if err != nil {
			return err
		}
		start := time.Now()
		rcpt, err := v.ForgetMe(ctx, tr.Msg.VisitToken)
		if err != nil {
			return fmt.Errorf("chat %d: forget: %w", i, err)
		}
		answer = append(answer, time.Since(start))
		if len(rcpt.Destroyed) == 0 {
			return fmt.Errorf("chat %d: an empty receipt", i)
		}
		start = time.Now()
		present, err := inDir(data, []byte(canary))
		if err != nil {
			return err
		}
		scan = append(scan, time.Since(start))
		if present {
			return fmt.Errorf("chat %d: the canary is on disk after ForgetMe answered", i)
		}
	}
	report("ForgetMe answered (chat, files, visit and mail gone)", answer)
	report("floor: one scan of the data directory", scan)
	return nil
}
