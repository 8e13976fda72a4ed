"""The sender in the loop (issue 13): decision links and the notices that carry them.

* ``tokens.py``  signed one-click links, bound to one hold, one role, one person;
* ``notices.py`` the bilingual notice mails (composed here, sent by ``dlp.smtp.senderloop``);
* ``routes.py``  who approves a sender's mail (``[[approval.routes]]``).

Pure: nothing here sends, stores or serves (``dlp.smtp.senderloop`` acts, the
decision pages are ``dlp.console.decide``).
"""
