// Production deployment of the BC <-> Dataverse sync: Flex Consumption Function App (Python 3.11,
// Linux) with a system-assigned identity, identity-only storage, Key Vault for the client secret,
// Application Insights + Log Analytics. Layout follows the Azure-Samples Flex Consumption azd quickstarts.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('azd environment name; used to name resources.')
param environmentName string

@minLength(1)
@description('Azure region for all resources.')
param location string

@description('Object id of the deploying user (azd sets AZURE_PRINCIPAL_ID); unused by the app.')
param principalId string = ''

@description('Directory (tenant) id of the Entra app registration; empty = the deployment tenant.')
param entraTenantId string = ''

@description('Application (client) id of the Entra app registration.')
param entraClientId string

@secure()
@description('Client secret of the app registration. Stored in Key Vault only.')
param entraClientSecret string

@description('Dataverse environment URL, e.g. https://contoso.crm4.dynamics.com')
param dataverseUrl string

@description('Business Central API host.')
param bcApiUrl string = 'https://api.businesscentral.dynamics.com'

@description('Business Central environment name.')
param bcEnvironment string = 'production'

@description('Business Central company id (GUID); empty = the first company.')
param bcCompanyId string = ''

@description('Business Central web client base URL (the CRM ribbon button redirects there).')
param bcWebClientUrl string = 'https://businesscentral.dynamics.com'
@description('API root per BC entity beyond v2.0, e.g. resources=bcsync/crm/v1.0 once bc-extension is published.')
param bcApiRoots string = ''

@description('NCRONTAB (6 fields, seconds first) of the scheduled modified sync.')
param syncSchedule string = '0 */30 * * * *'

@allowed(['function_key', 'entra'])
@description('Portal/ribbon authentication in addition to function keys.')
param portalAuthMode string = 'function_key'

@description('Flex Consumption: maximum instances the app scales out to.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 40

@allowed([2048, 4096])
param instanceMemoryMB int = 2048

@description('E-mail address the alert rules notify (action group); empty = alerts show in the portal only.')
param alertEmail string = ''

@description('Minutes between scheduled syncs (the period of syncSchedule): "no successful sync" fires after twice this.')
@minValue(1)
@maxValue(1440)
param syncIntervalMinutes int = 30

@description('HTTP 429 answers per service and 5 minutes that, for 15 minutes, raise the throttling alert.')
@minValue(1)
param throttledPerFiveMinutes int = 20

var abbrs = loadJsonContent('./abbreviations.json')
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = { 'azd-env-name': environmentName }
var functionAppName = '${abbrs.webSitesFunctions}api-${resourceToken}'
var deploymentStorageContainerName = 'app-package-${take(functionAppName, 32)}-${take(resourceToken, 7)}'

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: '${abbrs.resourcesResourceGroups}${environmentName}'
  location: location
  tags: tags
}

module monitoring './core/monitor/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    location: location
    tags: tags
    logAnalyticsName: '${abbrs.operationalInsightsWorkspaces}${resourceToken}'
    applicationInsightsName: '${abbrs.insightsComponents}${resourceToken}'
  }
}

module storage './core/storage/storage-account.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    location: location
    tags: tags
    name: '${abbrs.storageStorageAccounts}${resourceToken}'
    containers: [deploymentStorageContainerName]
  }
}

module keyVault './core/security/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    location: location
    tags: tags
    name: '${abbrs.keyVaultVaults}${resourceToken}'
    secretName: 'entra-client-secret'
    secretValue: entraClientSecret
  }
}

module api './app/api.bicep' = {
  name: 'api'
  scope: rg
  params: {
    location: location
    tags: union(tags, { 'azd-service-name': 'api' })
    name: functionAppName
    planName: '${abbrs.webServerFarms}${resourceToken}'
    storageAccountName: storage.outputs.name
    deploymentStorageContainerName: deploymentStorageContainerName
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    clientSecretUri: keyVault.outputs.secretUri
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
    syncSchedule: syncSchedule
    entraTenantId: empty(entraTenantId) ? tenant().tenantId : entraTenantId
    entraClientId: entraClientId
    dataverseUrl: dataverseUrl
    bcApiUrl: bcApiUrl
    bcEnvironment: bcEnvironment
    bcCompanyId: bcCompanyId
    bcWebClientUrl: bcWebClientUrl
    bcApiRoots: bcApiRoots
    portalAuthMode: portalAuthMode
  }
}

// Alert rules + action group, and the workbook, on the telemetry the app sends (shared/telemetry.py).
module alerts './core/monitor/alerts.bicep' = {
  name: 'alerts'
  scope: rg
  params: {
    location: location
    tags: tags
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    actionGroupName: 'ag-${resourceToken}'
    alertEmail: alertEmail
    syncIntervalMinutes: syncIntervalMinutes
    throttledPerFiveMinutes: throttledPerFiveMinutes
  }
}

module workbook './core/monitor/workbook.bicep' = {
  name: 'workbook'
  scope: rg
  params: {
    location: location
    tags: tags
    applicationInsightsName: monitoring.outputs.applicationInsightsName
  }
}

// Data-plane roles for the app's identity: runtime + app on storage, secret reads on Key Vault.
module rbac './app/rbac.bicep' = {
  name: 'rbac'
  scope: rg
  params: {
    principalId: api.outputs.identityPrincipalId
    storageAccountName: storage.outputs.name
    keyVaultName: keyVault.outputs.name
  }
}

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_PRINCIPAL_ID string = principalId
output RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = api.outputs.name
output SERVICE_API_NAME string = api.outputs.name
output SERVICE_API_URI string = api.outputs.uri
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
