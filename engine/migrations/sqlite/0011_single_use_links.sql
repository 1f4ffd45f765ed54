-- A single-use form link is used up by its first accepted submission: the submission's link
-- (`single_use:` and the link's nonce) is unique, so two arriving at once cannot both pass.
CREATE UNIQUE INDEX form_submissions_single_use ON form_submissions (link) WHERE link LIKE 'single_use:%';
