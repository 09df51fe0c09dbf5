// Flex Consumption plan + Function App (Python 3.11, Linux) with a system-assigned identity.
// Every setting shared/settings.py reads (except those Azure manages) is set here; the client
// secret is a Key Vault reference, never a plain value (checked by tests/unit/test_infra.py).
param location string
param tags object = {}
param name string
param planName string
param storageAccountName string
param deploymentStorageContainerName string
param applicationInsightsName string
@description('Versionless Key Vault secret URI of the Entra client secret.')
param clientSecretUri string
param maximumInstanceCount int = 40
param instanceMemoryMB int = 2048
param syncSchedule string
param entraTenantId string
param entraClientId string
param dataverseUrl string
param bcApiUrl string
param bcEnvironment string
param bcCompanyId string
param bcWebClientUrl string
@description('API root per BC entity beyond v2.0, e.g. resources=bcsync/crm/v1.0 once bc-extension is published.')
param bcApiRoots string = ''
param portalAuthMode string

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    // Key Vault references resolve with the system-assigned identity.
    keyVaultReferenceIdentity: 'SystemAssigned'
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentStorageContainerName}'
          authentication: {
            type: 'SystemAssignedIdentity'
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }

  resource appSettings 'config' = {
    name: 'appsettings'
    properties: {
      // Functions runtime: identity-based host storage (no connection string, no shared key).
      AzureWebJobsStorage__accountName: storage.name
      AzureWebJobsStorage__credential: 'managedidentity'
      APPLICATIONINSIGHTS_CONNECTION_STRING: applicationInsights.properties.ConnectionString
      // Schedule
      SYNC_SCHEDULE: syncSchedule
      // Entra ID app registration (client credentials for BC and Dataverse)
      ENTRA_TENANT_ID: entraTenantId
      ENTRA_CLIENT_ID: entraClientId
      ENTRA_CLIENT_SECRET: '@Microsoft.KeyVault(SecretUri=${clientSecretUri})'
      ENTRA_CLIENT_CERTIFICATE_PATH: ''
      ENTRA_AUTHORITY_HOST: 'https://login.microsoftonline.com'
      ENTRA_CA_BUNDLE: ''
      // Dataverse
      DATAVERSE_URL: dataverseUrl
      DATAVERSE_SCOPE: ''
      DATAVERSE_PAGE_SIZE: '5000'
      DATAVERSE_BULK_SIZE: '1000'
      DATAVERSE_MAX_CONCURRENCY: '52'
      DATAVERSE_APP_URL: ''
      // Business Central
      BC_API_URL: bcApiUrl
      BC_TENANT_ID: ''
      BC_ENVIRONMENT: bcEnvironment
      BC_COMPANY_ID: bcCompanyId
      BC_SCOPE: 'https://api.businesscentral.dynamics.com/.default'
      BC_PAGE_SIZE: '5000'
      BC_BATCH_SIZE: '100'
      BC_MAX_CONCURRENCY: '5'
      BC_API_ROOTS: bcApiRoots
      BC_WEB_CLIENT_URL: bcWebClientUrl
      // HTTP behaviour of both connectors
      HTTP_TIMEOUT_SECONDS: '60'
      HTTP_MAX_ATTEMPTS: '8'
      HTTP_MAX_RETRY_SECONDS: '300'
      // Engine
      MALLOC_ARENA_MAX: '2' // glibc: bound the per-thread heaps of the worker (shared/memory.py)
      SLICE_MAX_RECORDS: '5000'
      LEASE_SECONDS: '600'
      SLICE_CLAIM_SECONDS: '120'
      // Limits
      RETENTION_DAYS: '90'
      RATE_LIMIT_WINDOW_SECONDS: '60'
      RATE_LIMIT_RUN_STARTS: '30'
      RATE_LIMIT_DRY_RUNS: '10'
      // Portal and ribbon authentication
      PORTAL_AUTH_MODE: portalAuthMode
      PORTAL_AUTH_AUDIENCE: ''
      PORTAL_AUTH_ISSUER: ''
    }
  }
}

output name string = functionApp.name
output uri string = 'https://${functionApp.properties.defaultHostName}'
output identityPrincipalId string = functionApp.identity.principalId
