package chat

import (
	"context"
	"database/sql"
	"log/slog"

	"connectrpc.com/connect"

	chatv1 "github.com/lethehq/lethe/gen/go/lethe/chat/v1"
	"github.com/lethehq/lethe/server/auth"
	"github.com/lethehq/lethe/server/errs"
	"github.com/lethehq/lethe/server/ids"
)

// operatorChat loads a chat of the operator's account (NotFound for other
// accounts' chats: P11) and checks it is assigned to the operator.
func mineCheck(op *auth.Operator) func(c *Chat) error {
	return func(c *Chat) error {
		if c.AccountID != op.AccountID {
			return errs.NotFound("no such chat")
		}
		if c.State == StateClosed {
			return errs.Precondition("the chat is closed")
		}
		if c.State != StateActive || c.OperatorID != op.ID {
			return errs.Denied("this chat is not assigned to you")
		}
		return nil
	}
}

func requireChatID(id string) error {
	if id == "" {
		return errs.Invalid("chat_id is required")
	}
	return nil
}

// AcceptChat implements ChatServiceHandler.
func (s *Service) AcceptChat(ctx context.Context, req *connect.Request[chatv1.AcceptChatRequest]) (*connect.Response[chatv1.AcceptChatResponse], error) {
	op, _ := auth.OperatorFrom(ctx)
	if err := requireChatID(req.Msg.ChatId); err != nil {
		return nil, err
	}
	c, _, err := s.change(ctx, req.Msg.ChatId, func(c *Chat, _ *sql.Tx) ([]*chatv1.ChatEvent, error) {
		if c.AccountID != op.AccountID {
			return nil, errs.NotFound("no such chat")
		}
		switch {
		case c.State == StateClosed:
			return nil, errs.Precondition("the chat is closed")
		case c.State == StateActive && c.OperatorID == op.ID:
			return nil, nil // accepting twice is harmless
		case c.State == StateActive:
			return nil, errs.Precondition("another operator has taken this chat")
		}
		c.State, c.OperatorID, c.OperatorName = StateActive, op.ID, op.Name
		return []*chatv1.ChatEvent{{Kind: &chatv1.ChatEvent_OperatorJoined{OperatorJoined: &chatv1.OperatorJoined{OperatorId: op.ID, OperatorName: op.Name}}}}, nil
	})
	if err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "chat accepted", slog.String("chat", c.ID), slog.String("operator", op.ID))
	return connect.NewResponse(&chatv1.AcceptChatResponse{Chat: c.summary()}), nil
}

// SendOperatorMessage implements ChatServiceHandler.
func (s *Service) SendOperatorMessage(ctx context.Context, req *connect.Request[chatv1.SendOperatorMessageRequest]) (*connect.Response[chatv1.SendOperatorMessageResponse], error) {
	op, _ := auth.OperatorFrom(ctx)
	if err := requireChatID(req.Msg.ChatId); err != nil {
		return nil, err
	}
	text, err := cleanText(req.Msg.Text)
	if err != nil {
		return nil, err
	}
	check := mineCheck(op)
	_, evs, err := s.change(ctx, req.Msg.ChatId, func(c *Chat, _ *sql.Tx) ([]*chatv1.ChatEvent, error) {
		if err := check(c); err != nil {
			return nil, err
		}
		return []*chatv1.ChatEvent{{Kind: &chatv1.ChatEvent_Message{Message: &chatv1.Message{
			Id: ids.New(), AuthorKind: chatv1.AuthorKind_AUTHOR_KIND_OPERATOR, AuthorName: op.Name, Text: text}}}}, nil
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&chatv1.SendOperatorMessageResponse{Event: evs[0]}), nil
}

// SetOperatorTyping implements ChatServiceHandler.
func (s *Service) SetOperatorTyping(ctx context.Context, req *connect.Request[chatv1.SetOperatorTypingRequest]) (*connect.Response[chatv1.SetOperatorTypingResponse], error) {
	op, _ := auth.OperatorFrom(ctx)
	if err := requireChatID(req.Msg.ChatId); err != nil {
		return nil, err
	}
	c, err := s.store.Chat(ctx, req.Msg.ChatId)
	if isNotFound(err) {
		return nil, errs.NotFound("no such chat")
	}
	if err != nil {
		return nil, err
	}
	if err := mineCheck(op)(c); err != nil {
		return nil, err
	}
	s.typing(c, chatv1.AuthorKind_AUTHOR_KIND_OPERATOR, op.Name, req.Msg.Typing)
	return connect.NewResponse(&chatv1.SetOperatorTypingResponse{}), nil
}

// TransferChat implements ChatServiceHandler.
func (s *Service) TransferChat(ctx context.Context, req *connect.Request[chatv1.TransferChatRequest]) (*connect.Response[chatv1.TransferChatResponse], error) {
	op, _ := auth.OperatorFrom(ctx)
	if err := requireChatID(req.Msg.ChatId); err != nil {
		return nil, err
	}
	to := req.Msg.ToOperatorId
	if to == "" {
		return nil, errs.Invalid("to_operator_id is required")
	}
	if to == op.ID {
		return nil, errs.Invalid("you cannot transfer a chat to yourself")
	}
	name, err := s.dir.ActiveOperatorName(ctx, op.AccountID, to)
	if isNotFound(err) {
		return nil, errs.NotFound("no such operator")
	}
	if err != nil {
		return nil, err
	}
	if s.pres.status(to) != chatv1.OperatorStatus_OPERATOR_STATUS_ONLINE {
		return nil, errs.Precondition("that operator is not online")
	}
	check := mineCheck(op)
	c, _, err := s.change(ctx, req.Msg.ChatId, func(c *Chat, _ *sql.Tx) ([]*chatv1.ChatEvent, error) {
		if err := check(c); err != nil {
			return nil, err
		}
		c.OperatorID, c.OperatorName = to, name
		return []*chatv1.ChatEvent{
			{Kind: &chatv1.ChatEvent_OperatorLeft{OperatorLeft: &chatv1.OperatorLeft{OperatorId: op.ID, OperatorName: op.Name}}},
			{Kind: &chatv1.ChatEvent_OperatorJoined{OperatorJoined: &chatv1.OperatorJoined{OperatorId: to, OperatorName: name}}},
		}, nil
	})
	if err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "chat transferred", slog.String("chat", c.ID), slog.String("from", op.ID), slog.String("to", to))
	return connect.NewResponse(&chatv1.TransferChatResponse{Chat: c.summary()}), nil
}

// CloseChat implements ChatServiceHandler.
func (s *Service) CloseChat(ctx context.Context, req *connect.Request[chatv1.CloseChatRequest]) (*connect.Response[chatv1.CloseChatResponse], error) {
	op, _ := auth.OperatorFrom(ctx)
	if err := requireChatID(req.Msg.ChatId); err != nil {
		return nil, err
	}
	err := s.close(ctx, req.Msg.ChatId, closeOpts{by: chatv1.AuthorKind_AUTHOR_KIND_OPERATOR, check: func(c *Chat) error {
		if c.AccountID != op.AccountID {
			return errs.NotFound("no such chat")
		}
		if c.State == StateActive && c.OperatorID != op.ID {
			return errs.Denied("this chat is assigned to another operator")
		}
		return nil
	}})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&chatv1.CloseChatResponse{}), nil
}

// SetStatus implements ChatServiceHandler.
func (s *Service) SetStatus(ctx context.Context, req *connect.Request[chatv1.SetStatusRequest]) (*connect.Response[chatv1.SetStatusResponse], error) {
	op, _ := auth.OperatorFrom(ctx)
	switch req.Msg.Status {
	case chatv1.OperatorStatus_OPERATOR_STATUS_ONLINE, chatv1.OperatorStatus_OPERATOR_STATUS_AWAY:
	default:
		return nil, errs.Invalid("status must be ONLINE or AWAY")
	}
	st := s.pres.setDesired(op.AccountID, op.ID, op.Name, req.Msg.Status)
	if st == chatv1.OperatorStatus_OPERATOR_STATUS_OFFLINE {
		// No console stream is open: the choice applies once one connects.
		st = req.Msg.Status
	}
	return connect.NewResponse(&chatv1.SetStatusResponse{Status: st}), nil
}
