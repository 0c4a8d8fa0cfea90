DROP TABLE tenant_directory;
DROP TABLE tenant;
