-- Achievement definitions (SPEC §2: seeded by migration). Progress is derived from facts in
-- PostgreSQL by achievements::evaluate; thresholds are in the category's unit.
INSERT INTO achievements (code, name, description, category, threshold, xp_reward) VALUES
    ('links_1',      'First link',        'Create your first short link',                 'links',      1,      10),
    ('links_10',     'Link builder',      'Create 10 short links',                        'links',      10,     50),
    ('links_100',    'Link factory',      'Create 100 short links',                       'links',      100,    200),
    ('clicks_100',   'Getting noticed',   'Reach 100 clicks across your links',           'clicks',     100,    50),
    ('clicks_1k',    'Crowd pleaser',     'Reach 1,000 clicks across your links',         'clicks',     1000,   100),
    ('clicks_10k',   'Viral',             'Reach 10,000 clicks across your links',        'clicks',     10000,  250),
    ('clicks_100k',  'Phenomenon',        'Reach 100,000 clicks across your links',       'clicks',     100000, 500),
    ('protection_1', 'Keeper of secrets', 'Protect a link with a PIN or password',        'protection', 1,      25),
    ('utm_1',        'Campaigner',        'Create a link with UTM parameters',            'utm',        1,      25),
    ('utm_10',       'Marketer',          'Create 10 links with UTM parameters',          'utm',        10,     50),
    ('streak_7',     'Week streak',       'Create links on 7 consecutive days (UTC)',     'streak',     7,      100);
