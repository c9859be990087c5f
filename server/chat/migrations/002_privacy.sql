-- Finding a data subject's chats by the e-mail address they gave, as their
-- own or for a transcript copy (lethe.privacy.v1 FindDataSubject), without
-- reading every visitor: case-insensitive indexes per account, and the chat
-- of a visitor by its visitor.
CREATE INDEX visitors_account_email ON visitors(account_id, email COLLATE NOCASE);
CREATE INDEX visitors_account_transcript_email ON visitors(account_id, transcript_email COLLATE NOCASE);
CREATE INDEX chats_visitor ON chats(visitor_id);
