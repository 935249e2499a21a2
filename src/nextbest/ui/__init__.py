"""The web report (docs/report.md): pages plugins and the host register
(``register_report_pages``) rendered from blocks to HTML (``render``), served at ``/ui/`` with
signed sessions (``routes``, ``session``) and exported as one offline file (``export``).

Nothing is imported here, so loading the host's pages (``plugin``) stays cheap."""
